"""PyTorch's side of `cargo run --release -p nabla-core --example resnet_ops`: the same ops
(batch norm in training and evaluation, ReLU, the residual add) at ResNet-20's three stages,
batch 128, 2 threads, median of 7 rounds, in ms. Run beside the example in one sitting."""
import statistics
import time

import torch

torch.set_num_threads(2)


def median_ms(f, reps=10, rounds=7):
    for _ in range(3):
        f()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            f()
        times.append((time.perf_counter() - start) * 1e3 / reps)
    return statistics.median(times)


for c, h in [(16, 28), (32, 14), (64, 7)]:
    x = torch.randn(128, c, h, h, requires_grad=True)
    dy = torch.randn_like(x)
    bn = torch.nn.BatchNorm2d(c)
    bn_f = median_ms(lambda: bn(x.detach()))
    bn_fb = median_ms(lambda: torch.autograd.grad(bn(x), (x,), dy))
    bn.eval()
    with torch.inference_mode():
        bn_e = median_ms(lambda: bn(x))
        relu_f = median_ms(lambda: torch.relu(x))
        add_f = median_ms(lambda: x + dy)
    relu_fb = median_ms(lambda: torch.autograd.grad(torch.relu(x), (x,), dy))
    print(
        f"128x{c}x{h}x{h}: bn train fwd {bn_f:.3f} fwd+bwd {bn_fb:.3f} eval {bn_e:.3f} | "
        f"relu fwd {relu_f:.3f} fwd+bwd {relu_fb:.3f} | add {add_f:.3f} ms"
    )
