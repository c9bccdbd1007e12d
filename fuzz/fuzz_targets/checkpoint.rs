#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nabla_fuzz::checkpoint(data));
