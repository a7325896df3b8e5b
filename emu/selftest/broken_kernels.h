// Deliberately broken kernels for testing the emulated device's checks (emulated builds only).
#pragma once

#include <string>

namespace convnet::emu::selftest {

// Launches the kernel called `name` on the current device and waits for it; the emulator's
// error, if it finds one, is thrown as convnet::Error. mine: 128 floats on the current device;
// other: 64 floats on another device; host: 64 floats of host memory.
void run_broken_kernel(const std::string& name, float* mine, float* other, float* host);

}  // namespace convnet::emu::selftest
