// The interface between the direct convolution's driver (direct_conv.cpp) and its vector inner
// loops (direct_conv_avx512.cpp). Plain data and pointers only: the kernel file is compiled for
// AVX-512 and must not share inline functions with the rest of the library.
#pragma once

#include <cstdint>

namespace convnet::direct_conv {

// One image and group, on an input already padded (zeros around it) so that no tap falls
// outside: channel k's row y starts at in + k*channel_stride + y*wp. Only padded rows top to
// top + in_h - 1, columns left to left + in_w - 1, hold data: the kernels skip taps that would
// read the zeros around them (a fifth of all taps for 5x5 kernels on 8x8 images), and the last
// kernel row of the channels from short_from on, known to hold zero weights (space-to-depth's
// blocks past the kernel's edge).
struct Problem {
    int c;                        // input channels
    int kh, kw;                   // taps
    int oh, ow;                   // outputs (stride 1)
    int wp;                       // padded row length
    std::int64_t channel_stride;  // padded rows * wp
    int top, in_h;                // the padded rows that hold data
    int left, in_w;               // and columns
    int short_from;               // channels from this one on: the last kernel row is all zeros
};

// Several images at once in the filter-gradient tiles, so that a tile's setup and write-back are
// shared (8x8 images give a tile only 64 positions): at most this many, with their padded
// inputs image_stride floats apart and their transposed gradients dy_image_stride apart.
constexpr int kMaxFilterImages = 4;

namespace avx512 {
struct Images {
    int count;
    std::int64_t in_stride, dy_stride;
};
}  // namespace avx512

// Largest forward row tile for one and for two 16-channel vectors (accumulators R*nv, plus the
// weights and one broadcast, within the 32 vector registers), and the largest filter-gradient
// tile of taps.
constexpr int kMaxRow1 = 24, kMaxRow2 = 12, kMaxTapsI = 4, kMaxTapsJ = 7;
// At most this many accumulators in a filter-gradient tile (ti * tj * nv).
constexpr int kMaxFilterAccumulators = 28;

namespace avx512 {
// out[r][lanes] for outputs (y, x0 + r), r < count <= kMaxRow{nv}, of nv*16 output channels, summed
// over p.c input channels and the kernel rows first_row to end_row - 1 (those that read data rows
// for this y; the others read zeros): in points at padded input (y, x0) of the first, w at its
// packed weights [c][kh][kw][lanes]. accumulate adds to out's values; else they are overwritten.
void forward_row_tile(int nv, int count, const float* in, const float* w, const Problem& p, int x0,
                      int first_row, int end_row, float* out, bool accumulate);
// dst[k][y][x] = src[k][y - top][x - left] where that lies inside src (h x w), else 0; dst is
// channels x hp x wp. Rows of 16 columns at a time, masked: the images' rows are short, and a
// library copy and two fills per row cost more in calls than in bytes.
void pad_copy(const float* src, std::int64_t channels, std::int64_t h, std::int64_t w, float* dst,
              std::int64_t hp, std::int64_t wp, std::int64_t top, std::int64_t left);
// out[l * out_stride + x] = beta * out[...] + buf[x * lanes + l] + bias[l] for x < count and
// l < lanes (16 or 32): a row of row-tile outputs into its NCHW rows, 16 x 16 blocks transposed
// in registers. bias may be null; beta 0 ignores out's values.
void store_transposed(const float* buf, int count, int lanes, const float* bias, float beta,
                      float* out, std::int64_t out_stride);
// dst[q * lanes + l] = src[l * src_stride + q] for q < positions, l < lanes (16 or 32): an output
// gradient block into the filter-gradient tiles' [position][channel] order.
void transpose_to_positions(const float* src, std::int64_t src_stride, int lanes,
                            std::int64_t positions, float* dst);
// sums[l] += sum over q < positions of dyt[q * lanes + l], for l < lanes (16 or 32).
void add_position_sums(const float* dyt, int lanes, std::int64_t positions, float* sums);
// dw[c][i][j0 + b][lanes] += sum over outputs of in[c][y + i][x + j0 + b] * dy[y][x] for the
// kernel rows (c, i) numbered i * p.c + c from row0 to row0 + ti - 1 (tap row by tap row, so
// that a tile's rows read the same padded rows and skip the same zero ones; a tile may span two
// tap rows) and b < tj; dw is [c][kh][kw][lanes], dy is [oh][ow][lanes] of this block's output
// channels; summed over images.count images (in and dy advancing by their strides), image after
// image.
void filter_grad_tile(int nv, int ti, int tj, const float* in, const float* dy, const Problem& p,
                      int row0, int j0, float* dw, const Images& images);

// Three output channels (the data gradient of an RGB image's first layer), where 16-channel
// vectors would be mostly empty: vectors hold 16 positions of an output row instead. Three rows
// of two vectors by three channels: with four rows (24 accumulators) GCC spilled a weight to the
// stack and reloaded it for every multiply-add.
// out[c][r][x] for c < 3, r < rows <= kThinRows output rows from y0, x < width <= 32 columns,
// = beta * out + the sum over p.c input channels and all taps: in points at padded input (y0, x0)
// of channel 0 (with 32 readable floats past every row's end), w at the weights [k][i][j][3];
// out's rows are out_row apart, its channels out_channel. Kernel rows over the padding rows are
// left out. (With one or two channels each loaded input feeds too few multiply-adds to beat
// im2col + GEMM.)
constexpr int kThinChannels = 3, kThinRows = 3;
void thin_row_tile(int rows, const float* in, const float* w, const Problem& p, int y0,
                   float* out, std::int64_t out_row, std::int64_t out_channel, int width,
                   float beta);
}  // namespace avx512

}  // namespace convnet::direct_conv
