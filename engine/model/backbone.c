/* The ResNet backbone: its blocks, their torchvision names, init and
 * forward up to C2..C5. It knows nothing of necks, heads or levels. */
#include "model/backbone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Block {
  KdConv conv1, conv2, conv3;
  KdBn bn1, bn2, bn3;
  KdConv down;
  KdBn down_bn;
  int has_down, bottleneck;
} Block;

struct KdBackbone {
  KdBackboneCfg cfg;
  KdConv stem;
  KdBn stem_bn;
  Block *blocks;
  int nblocks, stage_end[KD_BACKBONE_STAGES];
  int channels[KD_BACKBONE_STAGES], stride[KD_BACKBONE_STAGES];
};

static const int *stage_blocks(int depth) {
  static const int d10[4] = {1, 1, 1, 1}, d18[4] = {2, 2, 2, 2}, d34[4] = {3, 4, 6, 3}, d101[4] = {3, 4, 23, 3};
  switch (depth) {
  case 10: return d10;
  case 18: return d18;
  case 34:
  case 50: return d34;
  case 101: return d101;
  default: return NULL;
  }
}

int kd_backbone_cfg_check(const KdBackboneCfg *cfg, KdError *err) {
  if (!stage_blocks(cfg->depth)) return kd_error(err, "model.depth: %d is not one of 10, 18, 34, 50, 101", cfg->depth);
  if (cfg->width < 1 || cfg->width > 512) return kd_error(err, "model.width: %d outside 1..512", cfg->width);
  if (cfg->bn < KD_BN_TRAIN || cfg->bn > KD_BN_FROZEN) return kd_error(err, "model.bn: unknown mode %d", (int)cfg->bn);
  return 0;
}

static int build_block(Block *b, KdParams *p, int s, int j, int in, int planes, int stride, int bottleneck) {
  char nm[256];
  int out = bottleneck ? 4 * planes : planes;
  b->bottleneck = bottleneck;
#define NAME(part) (snprintf(nm, sizeof nm, "backbone.body.layer%d.%d.%s", s + 1, j, part), nm)
  if (bottleneck) {
    if (kd_conv_add(&b->conv1, p, NAME("conv1"), in, planes, 1, 1, 0, 0) || kd_bn_add(&b->bn1, p, NAME("bn1"), planes) ||
        kd_conv_add(&b->conv2, p, NAME("conv2"), planes, planes, 3, stride, 1, 0) || kd_bn_add(&b->bn2, p, NAME("bn2"), planes) ||
        kd_conv_add(&b->conv3, p, NAME("conv3"), planes, out, 1, 1, 0, 0) || kd_bn_add(&b->bn3, p, NAME("bn3"), out))
      return -1;
  } else {
    if (kd_conv_add(&b->conv1, p, NAME("conv1"), in, planes, 3, stride, 1, 0) || kd_bn_add(&b->bn1, p, NAME("bn1"), planes) ||
        kd_conv_add(&b->conv2, p, NAME("conv2"), planes, planes, 3, 1, 1, 0) || kd_bn_add(&b->bn2, p, NAME("bn2"), planes))
      return -1;
  }
  if (stride != 1 || in != out) {
    b->has_down = 1;
    if (kd_conv_add(&b->down, p, NAME("downsample.0"), in, out, 1, stride, 0, 0) ||
        kd_bn_add(&b->down_bn, p, NAME("downsample.1"), out))
      return -1;
  }
#undef NAME
  return 0;
}

KdBackbone *kd_backbone_new(const KdBackboneCfg *cfg, KdParams *p, KdError *err) {
  if (kd_backbone_cfg_check(cfg, err)) return NULL;
  KdBackbone *b = calloc(1, sizeof *b);
  const int *n = stage_blocks(cfg->depth);
  int w = cfg->width, bottleneck = cfg->depth >= 50;
  if (!b) return kd_error(err, "out of memory"), NULL;
  b->cfg = *cfg;
  b->nblocks = n[0] + n[1] + n[2] + n[3];
  b->blocks = calloc((size_t)b->nblocks, sizeof *b->blocks);
  if (!b->blocks || kd_conv_add(&b->stem, p, "backbone.body.conv1", 3, w, 7, 2, 3, 0) ||
      kd_bn_add(&b->stem_bn, p, "backbone.body.bn1", w))
    goto oom;
  /* From the stem on, the backbone's activations stay in the blocked
   * layout (no reorder between convolutions); the FPN outputs, which the
   * distillation methods and probes read, are NCHW. */
  b->stem.cfg.layout = KD_CONV_BLOCKED;
  int in = w, bi = 0, stride = 4; /* stem conv /2, max pool /2 */
  for (int s = 0; s < KD_BACKBONE_STAGES; s++) {
    for (int j = 0; j < n[s]; j++, bi++) {
      int st = (s > 0 && j == 0) ? 2 : 1;
      if (build_block(&b->blocks[bi], p, s, j, in, w << s, st, bottleneck)) goto oom;
      in = bottleneck ? 4 * (w << s) : w << s;
      stride *= st;
    }
    b->stage_end[s] = bi;
    b->channels[s] = in;
    b->stride[s] = stride;
  }
  return b;
oom:
  kd_backbone_free(b);
  return kd_error(err, "could not build the backbone (out of memory?)"), NULL;
}

void kd_backbone_free(KdBackbone *b) {
  if (!b) return;
  free(b->blocks);
  free(b);
}

static void bn_init(KdBn *bn, int frozen) {
  kd_bn_init(bn);
  if (frozen) bn->gamma->requires_grad = bn->beta->requires_grad = 0;
}

void kd_backbone_init(KdBackbone *b, KdRng *r) {
  int frozen = b->cfg.bn == KD_BN_FROZEN;
  kd_init_kaiming_normal_fanout(b->stem.w, r);
  bn_init(&b->stem_bn, frozen);
  for (int i = 0; i < b->nblocks; i++) {
    Block *k = &b->blocks[i];
    kd_init_kaiming_normal_fanout(k->conv1.w, r);
    kd_init_kaiming_normal_fanout(k->conv2.w, r);
    bn_init(&k->bn1, frozen);
    bn_init(&k->bn2, frozen);
    if (k->bottleneck) {
      kd_init_kaiming_normal_fanout(k->conv3.w, r);
      bn_init(&k->bn3, frozen);
    }
    if (k->has_down) {
      kd_init_kaiming_normal_fanout(k->down.w, r);
      bn_init(&k->down_bn, frozen);
    }
  }
}

int kd_backbone_channels(const KdBackbone *b, int s) { return b->channels[s]; }
int kd_backbone_stride(const KdBackbone *b, int s) { return b->stride[s]; }

static KdTensor *conv_bn(KdCtx *c, const KdConv *cv, const KdBn *bn, KdTensor *x, KdBnMode mode, int relu) {
  KdTensor *y = kd_bn_fwd(c, bn, kd_conv_fwd(c, cv, x), mode);
  return relu ? kd_relu(c, y) : y;
}

static KdTensor *block_fwd(KdCtx *c, const Block *b, KdTensor *x, KdBnMode mode) {
  KdTensor *y = conv_bn(c, &b->conv1, &b->bn1, x, mode, 1);
  if (b->bottleneck) {
    y = conv_bn(c, &b->conv2, &b->bn2, y, mode, 1);
    y = conv_bn(c, &b->conv3, &b->bn3, y, mode, 0);
  } else {
    y = conv_bn(c, &b->conv2, &b->bn2, y, mode, 0);
  }
  KdTensor *id = b->has_down ? conv_bn(c, &b->down, &b->down_bn, x, mode, 0) : x;
  return kd_add_relu(c, y, id);
}

void kd_backbone_forward(const KdBackbone *b, KdCtx *c, KdTensor *images, int training, KdTensor **out) {
  KdBnMode mode = (training && b->cfg.bn == KD_BN_TRAIN) ? KD_BN_TRAIN : KD_BN_EVAL;
  KdTensor *x = conv_bn(c, &b->stem, &b->stem_bn, images, mode, 1);
  x = kd_maxpool2d(c, x, 3, 2, 1);
  for (int s = 0, bi = 0; s < KD_BACKBONE_STAGES; s++) {
    for (; bi < b->stage_end[s]; bi++) x = block_fwd(c, &b->blocks[bi], x, mode);
    out[s] = x;
  }
}

double kd_backbone_flops(const KdBackbone *b, int n, int h, int w, int *hw) {
  double f = kd_conv_flops(&b->stem, n, &h, &w);
  h = (h + 2 - 3) / 2 + 1, w = (w + 2 - 3) / 2 + 1;
  for (int s = 0, bi = 0; s < KD_BACKBONE_STAGES; s++) {
    for (; bi < b->stage_end[s]; bi++) {
      const Block *k = &b->blocks[bi];
      int h0 = h, w0 = w;
      f += kd_conv_flops(&k->conv1, n, &h, &w);
      f += kd_conv_flops(&k->conv2, n, &h, &w);
      if (k->bottleneck) f += kd_conv_flops(&k->conv3, n, &h, &w);
      if (k->has_down) f += kd_conv_flops(&k->down, n, &h0, &w0);
    }
    hw[2 * s] = h, hw[2 * s + 1] = w;
  }
  return f;
}
