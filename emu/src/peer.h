// Peer access between the emulated devices (cudaDeviceEnablePeerAccess).
#pragma once

namespace convnet::emu {

// Whether `device` enabled direct access to `peer`'s memory: what a kernel on `device` may then
// dereference of `peer`'s, as on a GPU.
bool peer_access_enabled(int device, int peer);

}  // namespace convnet::emu
