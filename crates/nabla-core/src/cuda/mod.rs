//! The CUDA device (feature `cuda`): contexts, a caching allocator and kernels. cudarc loads
//! libcuda, cuBLAS, cuDNN and NVRTC at run time, so this compiles without the CUDA toolkit.
