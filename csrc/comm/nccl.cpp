// Loading NCCL (nccl.h's comment says which library stands behind the table on which build).
#include "comm/nccl.h"

#include <mutex>

#include "core/check.h"

#if defined(CONVNET_EMU)
#include "nccl_emu.h"
#elif defined(CONVNET_WITH_CUDA)
#include <dlfcn.h>
#endif

namespace convnet::nccl {

namespace {

std::mutex& lock() {
    static std::mutex m;
    return m;
}
std::string& library() {
    static std::string path = "libnccl.so.2";
    return path;
}

struct Loaded {
    Api api{};
    bool ok = false;
    std::string why_not;
};

#if defined(CONVNET_EMU)
Loaded load() {
    Loaded l;
    l.api = Api{emu::nccl::comm_init_all,  emu::nccl::comm_destroy,   emu::nccl::all_reduce,
                emu::nccl::group_start,    emu::nccl::group_end,      emu::nccl::error_string,
                emu::nccl::get_unique_id,  emu::nccl::comm_init_rank, emu::nccl::comm_abort,
                emu::nccl::comm_get_async_error};
    l.ok = true;
    return l;
}
#elif defined(CONVNET_WITH_CUDA)
template <typename F>
bool find(void* handle, const char* name, F& out, std::string& why_not) {
    out = reinterpret_cast<F>(dlsym(handle, name));
    if (!out) why_not = library() + " has no " + name;
    return out != nullptr;
}

Loaded load() {
    Loaded l;
    void* handle = dlopen(library().c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* e = dlerror();
        l.why_not = "NCCL not found (" + std::string(e ? e : library()) +
                    "); pip install \"convnet[nccl]\" brings it";
        return l;
    }
    Api& a = l.api;
    l.ok = find(handle, "ncclCommInitAll", a.comm_init_all, l.why_not) &&
           find(handle, "ncclCommDestroy", a.comm_destroy, l.why_not) &&
           find(handle, "ncclAllReduce", a.all_reduce, l.why_not) &&
           find(handle, "ncclGroupStart", a.group_start, l.why_not) &&
           find(handle, "ncclGroupEnd", a.group_end, l.why_not) &&
           find(handle, "ncclGetErrorString", a.error_string, l.why_not) &&
           find(handle, "ncclGetUniqueId", a.get_unique_id, l.why_not) &&
           find(handle, "ncclCommInitRank", a.comm_init_rank, l.why_not) &&
           find(handle, "ncclCommAbort", a.comm_abort, l.why_not) &&
           find(handle, "ncclCommGetAsyncError", a.comm_get_async_error, l.why_not);
    return l;
}
#else
Loaded load() {
    Loaded l;
    l.why_not = "this build of convnet has no CUDA";
    return l;
}
#endif

Loaded& loaded() {
    static Loaded l;
    return l;
}
bool& tried() {
    static bool t = false;
    return t;
}

}  // namespace

void set_library(const std::string& path) {
    std::lock_guard<std::mutex> g(lock());
    library() = path;
    if (!loaded().ok) tried() = false;   // a miss is tried again with the new file
}

const Api* api(std::string* why_not) {
    std::lock_guard<std::mutex> g(lock());
    if (!tried()) {
        loaded() = load();
        tried() = true;
    }
    if (!loaded().ok && why_not) *why_not = loaded().why_not;
    return loaded().ok ? &loaded().api : nullptr;
}

void check(const Api& nccl, int result, const char* what) {
    if (result != kSuccess)
        throw Error(std::string(what) + ": NCCL error " + std::to_string(result) + " (" +
                    nccl.error_string(result) + ")");
}

}  // namespace convnet::nccl
