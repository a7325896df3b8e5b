// The direct convolution's driver (direct_conv.h): padding, weight packing, threading and the
// layout changes between NCHW tensors and the kernels' [position][16 or 32 channels] tiles.
#include "cpu/direct_conv.h"

#include <omp.h>

#include <algorithm>
#include <atomic>

#include "core/check.h"
#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/direct_conv_kernels.h"
#include "cpu/vector_clones.h"
#include "ops/neuron.h"

namespace convnet::direct_conv {

namespace {

enum class Algorithm { automatic, gemm, direct };
std::atomic<Algorithm> g_algorithm{Algorithm::automatic};
std::atomic<std::int64_t> g_calls{0};

// Channel blocks: 32 channels (two vectors) at a time, a last block of 16 where the count is
// an odd multiple of 16.
struct Blocks {
    explicit Blocks(std::int64_t channels) : count((channels + 31) / 32), channels(channels) {}
    int lanes(int b) const { return int(std::min<std::int64_t>(32, channels - 32 * b)); }
    int count;
    std::int64_t channels;
};

// The common eligibility: stride 1, AVX-512, and (unless pinned to "direct") an image for every
// thread, since the direct path parallelises over images only. Any filter count: since its
// kernels load their broadcasts from memory and unroll the kernel rows, the direct path beats
// im2col + GEMM on AlexNet's conv2-5 too (128-384 filters per group: 265-306 GFLOP/s against
// 176-244 on a 2-core AVX-512 Xeon, 2026-12-05), where it had been 5-15% slower.
bool eligible(const ConvGeometry& g) {
    const Algorithm a = g_algorithm.load();
    if (a == Algorithm::gemm || !cpu_supported()) return false;
    if (g.stride_h != 1 || g.stride_w != 1) return false;
    return a == Algorithm::direct ||
           g.n >= omp_get_max_threads();
}

// The kernels' view of one image and group: `channels` input planes of in_h x in_w, padded with
// `top` zero rows above and `left` zero columns before (and as many after as the out_h x out_w
// outputs need).
Problem problem(std::int64_t channels, const ConvGeometry& g, std::int64_t out_h,
                std::int64_t out_w, std::int64_t top, std::int64_t in_h, std::int64_t left,
                std::int64_t in_w, std::int64_t short_from = -1) {
    const std::int64_t hp = out_h + g.kh - 1, wp = out_w + g.kw - 1;
    return Problem{int(channels), int(g.kh), int(g.kw), int(out_h), int(out_w), int(wp), hp * wp,
                   int(top), int(in_h), int(left), int(in_w),
                   int(short_from < 0 ? channels : short_from)};
}

// The data gradient's view: dy's `filters` planes padded by kernel - 1 - padding, the kernel
// flipped, giving dx's h x w (backward_data and thin_backward_data).
Problem data_gradient_problem(std::int64_t filters, const ConvGeometry& g) {
    return problem(filters, g, g.h, g.w, g.kh - 1 - g.pad_h, g.oh, g.kw - 1 - g.pad_w, g.ow);
}

// The tap (i, j) of the flipped kernel from filter f of group grp to its input channel c.
float flipped_tap(const float* w, const ConvGeometry& g, int grp, std::int64_t f, std::int64_t c,
                  std::int64_t i, std::int64_t j) {
    const std::int64_t cg = g.channels_per_group(), fg = g.filters_per_group();
    return w[(((grp * fg + f) * cg + c) * g.kh + g.kh - 1 - i) * g.kw + g.kw - 1 - j];
}

// The input channels of one pass over an output plane: as many as keep their packed weights
// within this many bytes, so that they stay in L1 while every tile of the plane reuses them (a
// whole block's weights, 100-200 KB for 32-64 channels of 5x5 taps, would stream from L2 for
// each tile of a few outputs and leave the FMAs waiting).
constexpr std::int64_t kWeightChunkBytes = 16 * 1024;
// The output gradients one filter-gradient tile reads for all its images stay within this.
constexpr std::int64_t kFilterTileBytes = 32 * 1024;

// One output plane tile by tile: rows of `out_w` outputs split into near-equal tiles of at most
// the kernel's longest, summed over the input channels a chunk at a time into planebuf
// ([y][x][lanes], the whole plane); each row is handed to store(y, row) as soon as the last chunk
// has been added to it, while it is still in L1.
template <typename Store>
void forward_plane(const float* padded, const float* wblock, int lanes, const Problem& p,
                   float* planebuf, Store&& store) {
    const int nv = lanes / 16;
    const int longest = nv == 2 ? kMaxRow2 : kMaxRow1;
    const int tiles = (p.ow + longest - 1) / longest;
    const int tile = (p.ow + tiles - 1) / tiles;
    const std::int64_t taps = std::int64_t(p.kh) * p.kw;
    const int chunk = int(std::max<std::int64_t>(1, kWeightChunkBytes / (taps * lanes * 4)));
    for (int c0 = 0; c0 < p.c; c0 += chunk) {
        Problem part = p;
        part.c = std::min(chunk, p.c - c0);
        part.short_from = std::max(0, p.short_from - c0);
        const float* in = padded + c0 * p.channel_stride;
        const float* w = wblock + c0 * taps * lanes;
        const bool last = c0 + chunk >= p.c;
        for (int y = 0; y < p.oh; ++y) {
            float* row = planebuf + std::int64_t(y) * p.ow * lanes;
            // Kernel row i reads padded row y + i: only those holding data count.
            const int first_row = std::max(0, p.top - y);
            const int end_row = std::min(p.kh, p.top + p.in_h - y);
            for (int x0 = 0; x0 < p.ow; x0 += tile)
                avx512::forward_row_tile(nv, std::min(tile, p.ow - x0),
                                         in + std::int64_t(y) * p.wp + x0, w, part, x0,
                                         first_row, end_row, row + std::int64_t(x0) * lanes,
                                         c0 > 0);
            if (last) store(y, row);
        }
    }
}

// Weights packed for the row tiles: per group, and per block of 16 or 32 of its output channels,
// [input channel][i][j][lanes]; weight(grp, o, k, i, j) reads the tap of output o and input k.
template <typename Weight>
Tensor pack_row_tiles(const ConvGeometry& g, std::int64_t outs, std::int64_t ins,
                      Weight&& weight) {
    Tensor packed = Tensor::empty({g.groups * outs * ins * g.kh * g.kw});
    float* dst = packed.data<float>();
    const Blocks blocks(outs);
    for (int grp = 0; grp < g.groups; ++grp)
        for (int blk = 0; blk < blocks.count; ++blk)
            for (std::int64_t k = 0; k < ins; ++k)
                for (std::int64_t i = 0; i < g.kh; ++i)
                    for (std::int64_t j = 0; j < g.kw; ++j)
                        for (int l = 0; l < blocks.lanes(blk); ++l)
                            *dst++ = weight(grp, 32 * blk + l, k, i, j);
    return packed;
}

// What row_tile_planes does to each image and group's output once it is written.
struct Epilogue {
    const NeuronParams* neuron = nullptr;
    // Null: out = neuron(out). Else out is the gradient of the neuron's output, which lies at
    // neuron_output in out's layout, and becomes the gradient of its input.
    const float* neuron_output = nullptr;
    // Called with the image once its planes are all written (one group per image only).
    const ImageHook* after_image = nullptr;
};

// One direction by row tiles, for every image and group: the group's `ins` input planes (of
// in_total per image, p.in_h x p.in_w, at in) padded by (p.top, p.left), convolved with `packed`
// (per group and block of output channels, [ins][kh][kw][lanes]) into its `outs` output planes (of
// out_total, p.oh x p.ow, at out): out = beta * out + bias + the convolution; then, over the
// group's planes of the image while still in cache, the epilogue's neuron where one is given.
void row_tile_planes(const ConvGeometry& g, const Problem& p, const float* in,
                     std::int64_t in_total, std::int64_t ins, const float* packed,
                     std::int64_t outs, std::int64_t out_total, const float* bias, float beta,
                     float* out, const Epilogue& epilogue) {
    const Blocks blocks(outs);
    const std::int64_t taps = g.kh * g.kw, plane = std::int64_t(p.oh) * p.ow;
    const int threads = blas::threads_for(g.n * g.groups);
    Tensor scratch = blas::thread_rows(threads, ins * p.channel_stride + plane * 32);
    blas::for_each_item(g.n * g.groups, threads, [&](std::int64_t item, int t) {
        const std::int64_t n = item / g.groups;
        const int grp = int(item % g.groups);
        float* padded = scratch.data<float>() + t * scratch.dim(1);
        float* planebuf = padded + ins * p.channel_stride;
        avx512::pad_copy(in + (n * in_total + grp * ins) * p.in_h * p.in_w, ins, p.in_h, p.in_w,
                         padded, p.oh + g.kh - 1, p.wp, p.top, p.left);
        for (int blk = 0; blk < blocks.count; ++blk) {
            const int lanes = blocks.lanes(blk);
            const std::int64_t o0 = grp * outs + 32 * blk;
            float* dst = out + (n * out_total + o0) * plane;
            forward_plane(padded, packed + o0 * ins * taps, lanes, p, planebuf,
                          [&](int row, const float* buf) {
                              avx512::store_transposed(buf, p.ow, lanes,
                                                       bias ? bias + o0 : nullptr, beta,
                                                       dst + std::int64_t(row) * p.ow, plane);
                          });
        }
        if (epilogue.neuron) {
            const std::int64_t at = (n * out_total + grp * outs) * plane;
            if (epilogue.neuron_output)
                neuron_gradient_in_place_cpu(epilogue.neuron_output + at, out + at, outs * plane,
                                             *epilogue.neuron);
            else
                neuron_in_place_cpu(out + at, outs * plane, *epilogue.neuron);
        }
        if (epilogue.after_image && g.groups == 1) (*epilogue.after_image)(n);
    });
}

}  // namespace

void set_algorithm(const std::string& name) {
    if (name == "auto")
        g_algorithm = Algorithm::automatic;
    else if (name == "gemm")
        g_algorithm = Algorithm::gemm;
    else if (name == "direct")
        g_algorithm = Algorithm::direct;
    else
        throw ArgumentError(detail::concat("conv algorithm must be 'auto', 'gemm' or 'direct', got '",
                                           name, "'"));
}

std::string algorithm() {
    switch (g_algorithm.load()) {
        case Algorithm::gemm: return "gemm";
        case Algorithm::direct: return "direct";
        default: return "auto";
    }
}

bool cpu_supported() { return cpu_has_avx512f(); }

std::int64_t calls() { return g_calls.load(); }

bool use_forward(const ConvGeometry& g) {
    return eligible(g) && g.filters_per_group() % 16 == 0;
}

bool use_backward_data(const ConvGeometry& g) {
    // The flipped kernel needs padding of kh-1-pad >= 0 on each side.
    return eligible(g) && g.channels_per_group() % 16 == 0 && g.pad_h <= g.kh - 1 &&
           g.pad_w <= g.kw - 1;
}

bool use_thin_backward_data(const ConvGeometry& g) {
    return eligible(g) && g.groups == 1 && g.c == avx512::kThinChannels &&
           g.pad_h <= g.kh - 1 && g.pad_w <= g.kw - 1;
}

bool use_backward_filter(const ConvGeometry& g) {
    return eligible(g) && g.filters_per_group() % 16 == 0;
}

void forward(const float* x, const float* w, const float* b, float* y, const ConvGeometry& g,
             const NeuronParams* neuron, const ImageHook* after_image,
             std::int64_t short_from) {
    ++g_calls;
    const std::int64_t cg = g.channels_per_group(), fg = g.filters_per_group();
    const Tensor packed = pack_row_tiles(g, fg, cg, [&](int grp, std::int64_t f, std::int64_t c,
                                                          std::int64_t i, std::int64_t j) {
        return w[(((grp * fg + f) * cg + c) * g.kh + i) * g.kw + j];
    });
    row_tile_planes(g, problem(cg, g, g.oh, g.ow, g.pad_h, g.h, g.pad_w, g.w, short_from), x,
                    g.c, cg, packed.data<float>(), fg, g.f, b, 0.f, y,
                    Epilogue{neuron, nullptr, after_image});
    // With several groups an image's planes are written by several items: hand them over after.
    if (after_image && g.groups > 1)
        blas::for_each_item(g.n, blas::threads_for(g.n),
                            [&](std::int64_t n, int) { (*after_image)(n); });
}

// The forward loop over dy padded by kh-1-pad (kw-1-pad) before, with the kernel flipped and its
// channel axes swapped, producing dx's h x w.
void backward_data(const float* w, const float* dy, float* dx, const ConvGeometry& g, float beta,
                   const float* x, const NeuronParams* x_neuron) {
    ++g_calls;
    const std::int64_t cg = g.channels_per_group(), fg = g.filters_per_group();
    const Tensor packed = pack_row_tiles(g, cg, fg, [&](int grp, std::int64_t c, std::int64_t f,
                                                          std::int64_t i, std::int64_t j) {
        return flipped_tap(w, g, grp, f, c, i, j);
    });
    row_tile_planes(g, data_gradient_problem(fg, g), dy, g.f, fg, packed.data<float>(), cg, g.c,
                    nullptr, beta, dx, Epilogue{x_neuron, x});
}

// The same padded dy and flipped kernel as backward_data, tiled by rows and 32 columns of dx.
void thin_backward_data(const float* w, const float* dy, float* dx, const ConvGeometry& g,
                        float beta, const float* x, const NeuronParams* x_neuron) {
    ++g_calls;
    constexpr int channels = avx512::kThinChannels;
    const std::int64_t taps = g.kh * g.kw;
    // [f][i][j][c]: the flipped tap of filter f for image channel c.
    Tensor packed = Tensor::empty({g.f * taps * channels});
    float* wp = packed.data<float>();
    for (std::int64_t f = 0; f < g.f; ++f)
        for (std::int64_t i = 0; i < g.kh; ++i)
            for (std::int64_t j = 0; j < g.kw; ++j)
                for (int c = 0; c < channels; ++c) *wp++ = flipped_tap(w, g, 0, f, c, i, j);
    const Problem p = data_gradient_problem(g.f, g);
    const std::int64_t padded_size = g.f * p.channel_stride, slack = 32;
    const int rows = avx512::kThinRows;
    const std::int64_t image = channels * g.h * g.w;
    const int threads = blas::threads_for(g.n);
    Tensor scratch = blas::thread_rows(threads, padded_size + slack);
    blas::for_each_item(g.n, threads, [&](std::int64_t n, int t) {
        float* padded = scratch.data<float>() + t * scratch.dim(1);
        avx512::pad_copy(dy + n * g.f * g.oh * g.ow, g.f, g.oh, g.ow, padded, g.h + g.kh - 1,
                         p.wp, p.top, p.left);
        // The tiles' last vectors read up to 32 floats past a row: past the last, zeros.
        std::fill(padded + padded_size, padded + padded_size + slack, 0.f);
        float* dxn = dx + n * image;
        for (std::int64_t x0 = 0; x0 < g.w; x0 += 32)
            for (std::int64_t y0 = 0; y0 < g.h; y0 += rows)
                avx512::thin_row_tile(int(std::min<std::int64_t>(rows, g.h - y0)),
                                      padded + y0 * p.wp + x0, packed.data<float>(), p, int(y0),
                                      dxn + y0 * g.w + x0, g.w, g.h * g.w,
                                      int(std::min<std::int64_t>(32, g.w - x0)), beta);
        if (x_neuron) neuron_gradient_in_place_cpu(x + n * image, dxn, image, *x_neuron);
    });
}

void backward_filter(const float* x, const float* dy, float* dw, float* db, const ConvGeometry& g,
                     float beta, std::int64_t short_from) {
    ++g_calls;
    const std::int64_t cg = g.channels_per_group(), fg = g.filters_per_group();
    const std::int64_t taps = g.kh * g.kw, positions = g.oh * g.ow;
    const Problem p = problem(cg, g, g.oh, g.ow, g.pad_h, g.h, g.pad_w, g.w, short_from);
    const Blocks blocks(fg);
    const std::int64_t dw_size = g.f * cg * taps;  // packed like forward(): [grp][blk][c][i][j][l]
    const int threads = blas::threads_for(g.n);
    Tensor partial = blas::thread_rows(threads, dw_size + g.f);
    std::fill(partial.data<float>(), partial.data<float>() + partial.numel(), 0.f);
    // Each item is `per_item` consecutive images whose tiles are summed together (a tile's setup
    // and write-back shared), as many as keep the gradients a tile reads within L1 (small images
    // only: 4 of 8x8, one of 14x14); each thread sums whole items (static schedule: the same
    // images every run).
    const std::int64_t fits = kFilterTileBytes / (positions * 32 * std::int64_t(sizeof(float)));
    const int per_item = int(std::max<std::int64_t>(
        1, std::min<std::int64_t>({kMaxFilterImages, fits, g.n / threads})));
    const std::int64_t items = (g.n + per_item - 1) / per_item;
    const std::int64_t in_stride = cg * p.channel_stride, dy_stride = positions * 32;
    Tensor scratch = blas::thread_rows(threads, per_item * (in_stride + dy_stride));
    blas::for_each_item(items, threads, [&](std::int64_t item, int t) {
        const std::int64_t n0 = item * per_item;
        const avx512::Images images{int(std::min<std::int64_t>(per_item, g.n - n0)), in_stride,
                                    dy_stride};
        float* padded = scratch.data<float>() + t * scratch.dim(1);
        float* dyt = padded + per_item * in_stride;
        float* dw_t = partial.data<float>() + t * partial.dim(1);
        float* db_t = dw_t + dw_size;
        for (int grp = 0; grp < g.groups; ++grp) {
            if (dw)
                for (int k = 0; k < images.count; ++k)
                    avx512::pad_copy(x + ((n0 + k) * g.c + grp * cg) * g.h * g.w, cg, g.h, g.w,
                                     padded + k * in_stride, g.oh + g.kh - 1, p.wp, g.pad_h,
                                     g.pad_w);
            for (int blk = 0; blk < blocks.count; ++blk) {
                const int lanes = blocks.lanes(blk), nv = lanes / 16;
                const std::int64_t f0 = grp * fg + 32 * blk;
                for (int k = 0; k < images.count; ++k) {
                    const float* dyb = dy + ((n0 + k) * g.f + f0) * positions;
                    avx512::transpose_to_positions(dyb, positions, lanes, positions,
                                                   dyt + k * dy_stride);
                    if (db) avx512::add_position_sums(dyt + k * dy_stride, lanes, positions,
                                                      db_t + f0);
                }
                if (!dw) continue;
                float* dwb = dw_t + f0 * cg * taps;
                // Tiles of ti kernel rows (counted tap row by tap row over the channels, so that
                // a tile's rows skip the same padding rows, and spanning two tap rows rather
                // than leaving a short tile at the end of each) by tj taps.
                const int tj = int(std::min<std::int64_t>(g.kw, kMaxTapsJ));
                // The short channels' last rows come last in this order: left out.
                const int kernel_rows = int(cg * g.kh) - (p.c - p.short_from);
                for (int j0 = 0; j0 < g.kw; j0 += tj) {
                    const int cols = std::min<int>(tj, int(g.kw) - j0);
                    const int ti = std::max(1, std::min(kMaxTapsI,
                                                        kMaxFilterAccumulators / (cols * nv)));
                    for (int r0 = 0; r0 < kernel_rows; r0 += ti)
                        avx512::filter_grad_tile(nv, std::min(ti, kernel_rows - r0), cols, padded,
                                                 dyt, p, r0, j0, dwb, images);
                }
            }
        }
    });
    // Sum the threads' partials and unpack [grp][blk][c][i][j][l] into dw[f][c][i][j].
    const float* parts = partial.data<float>();
    auto total = [&](std::int64_t offset) {
        float sum = 0.f;
        for (int t = 0; t < threads; ++t) sum += parts[t * partial.dim(1) + offset];
        return sum;
    };
    if (dw)
        for (int grp = 0; grp < g.groups; ++grp)
            for (int blk = 0; blk < blocks.count; ++blk) {
                const int lanes = blocks.lanes(blk);
                const std::int64_t f0 = grp * fg + 32 * blk;
                for (std::int64_t ct = 0; ct < cg * taps; ++ct)
                    for (int l = 0; l < lanes; ++l) {
                        const float sum = total(f0 * cg * taps + ct * lanes + l);
                        float& out = dw[(f0 + l) * cg * taps + ct];
                        out = beta == 0.f ? sum : beta * out + sum;
                    }
            }
    if (db)
        for (std::int64_t f = 0; f < g.f; ++f) {
            const float sum = total(dw_size + f);
            db[f] = beta == 0.f ? sum : beta * db[f] + sum;
        }
}

}  // namespace convnet::direct_conv
