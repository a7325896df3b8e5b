// im2col / col2im for one image and one group of channels.
// col is (C*KH*KW, OH*OW), row r = (c*KH + ky)*KW + kx, column p = oy*OW + ox, holding
// x[c, oy*SH - PH + ky, ox*SW - PW + kx] or 0 where that pixel lies outside the image.
#pragma once

#include <cstdint>

#include "ops/conv.h"

namespace convnet {

// x is (C/G, H, W) of one image and group; col as above.
template <typename T>
void im2col(const T* x, T* col, const ConvGeometry& g);
// Accumulates col back into dx (C/G, H, W): dx += col2im(col).
template <typename T>
void col2im_add(const T* col, T* dx, const ConvGeometry& g);

}  // namespace convnet
