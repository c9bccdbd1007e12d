"""Reads the TensorBoard event files of a nabla run with TensorBoard's own reader and prints
every scalar tag (first and last value, count) and image tag, so that a change to
crates/nabla-train/src/tensorboard.rs can be checked against the real consumer.

    nabla train --tensorboard --epochs 2 --out runs/tb
    python tools/check_tensorboard.py runs/tb/tensorboard

Needs `pip install tensorboard`; CI does not run it. Exits 1 if no scalars were read.
"""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0})
acc.Reload()
tags = acc.Tags()
for tag in sorted(tags["scalars"]):
    events = acc.Scalars(tag)
    print(f"{tag:24} {len(events):5} points  first {events[0].value:.6g} (step {events[0].step})"
          f"  last {events[-1].value:.6g} (step {events[-1].step})")
for tag in sorted(tags["images"]):
    imgs = acc.Images(tag)
    print(f"{tag:24} {len(imgs):5} images  {imgs[-1].width}x{imgs[-1].height}")
sys.exit(0 if tags["scalars"] else 1)
