/* Building blocks shared by the backbone, neck and heads: a convolution
 * with optional bias, a batch norm, a group norm, a linear layer, each
 * registered in a KdParams store under torchvision-style dotted names. */
#ifndef KD_LAYERS_H
#define KD_LAYERS_H

#include "core/ops.h"
#include "core/params.h"
#include "core/rng.h"

typedef enum { KD_BN_TRAIN = 0, KD_BN_EVAL = 1, KD_BN_FROZEN = 2 } KdBnMode;

typedef struct KdConv {
  KdTensor *w, *b; /* b may be NULL */
  KdConvCfg cfg;
} KdConv;

typedef struct KdBn {
  KdTensor *gamma, *beta, *mean, *var;
} KdBn;

typedef struct KdGn {
  KdTensor *gamma, *beta;
  int groups;
} KdGn;

/* nn.Linear: w {out, in}, b {out}. */
typedef struct KdLinear {
  KdTensor *w, *b;
} KdLinear;

/* name is the module prefix, e.g. "backbone.body.conv1" -> ".weight"/".bias". */
int kd_conv_add(KdConv *cv, KdParams *p, const char *name, int cin, int cout, int k, int stride, int pad,
                int bias);
int kd_bn_add(KdBn *bn, KdParams *p, const char *name, int ch);
int kd_gn_add(KdGn *gn, KdParams *p, const char *name, int ch, int groups);
int kd_linear_add(KdLinear *fc, KdParams *p, const char *name, int in, int out);

/* Initialisers, as torchvision's defaults for each place. */
void kd_init_kaiming_normal_fanout(KdTensor *w, KdRng *r); /* ResNet convs */
void kd_init_kaiming_uniform_a1(KdTensor *w, KdRng *r);    /* FPN convs */
void kd_init_normal(KdTensor *w, float std, KdRng *r);
void kd_init_const(KdTensor *t, float v);
/* PyTorch's default conv bias init U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
void kd_init_bias_default(KdTensor *b, const KdTensor *w, KdRng *r);
void kd_bn_init(KdBn *bn);
/* nn.Linear's default: weight and bias U(-1/sqrt(in), 1/sqrt(in)). */
void kd_linear_init(KdLinear *fc, KdRng *r);

KdTensor *kd_conv_fwd(KdCtx *c, const KdConv *cv, KdTensor *x);
KdTensor *kd_bn_fwd(KdCtx *c, const KdBn *bn, KdTensor *x, KdBnMode mode);
/* x: R,in (or any shape with in values per row, flattened) -> R,out */
KdTensor *kd_linear_fwd(KdCtx *c, const KdLinear *fc, KdTensor *x);
/* FLOPs (multiply-adds x 2) of the conv on n images of *h x *w, which
 * become the output size. */
double kd_conv_flops(const KdConv *cv, int n, int *h, int *w);

#endif
