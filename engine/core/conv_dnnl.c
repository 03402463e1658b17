/* Convolution through oneDNN (Debian's libdnnl 2.6, its C API): forward,
 * backward-data and backward-weights primitives on layouts oneDNN picks
 * (blocked, 16 channels a block on AVX-512), created once per geometry and
 * kept in the ctx, so a steady-state step creates nothing.
 *
 * Tensors stay plain NCHW / OIHW outside this file: inputs are reordered
 * into the primitive's layout, outputs back; gradients through a reorder
 * with a sum post-op, so they accumulate (+=) like every other op's. The
 * blocked copies and the primitives' scratchpads come from the step arena
 * (scratchpad mode "user"): oneDNN's own scratchpad would be malloc'd and
 * freed around every call.
 *
 * Copies that are reused: a parameter's weights in a primitive's layout,
 * made once per ctx generation (the head's convs run on every FPN level
 * with the same weights); the forward's blocked input, kept for the
 * backward-weights pass when both read one layout. */
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv_impl.h"

enum { FWD, BWD_DATA, BWD_WEIGHTS, NPASS };
/* Arguments of each pass, in order: fwd src, weights, dst; bwd-data
 * diff_dst, weights, diff_src; bwd-weights src, diff_dst, diff_weights. */
enum { IN0, IN1, OUT, NARG };
enum { BIND_IN, BIND_OUT, BIND_ACC };

/* One tensor as a primitive takes it: `user` wraps the plain buffer,
 * `inner` is the primitive's layout (the same object when they agree). */
typedef struct Bound {
  dnnl_memory_t user, inner;
  dnnl_primitive_t reorder; /* user->inner (inputs), inner->user (outputs); or NULL */
  size_t bytes;             /* of the inner buffer when it is separate */
  int same;                 /* inner and user layouts agree (BIND_ACC keeps them apart) */
} Bound;

typedef struct Pass {
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
  Bound arg[NARG];
  dnnl_memory_t bias;    /* bias (fwd) or diff_bias (bwd-weights); NULL without */
  dnnl_memory_t scratch; /* NULL when the primitive needs none */
  size_t scratch_bytes;
} Pass;

struct KdDnnlConv {
  KdConvGeom g;
  int threads;
  int built[NPASS]; /* 1 built, -1 oneDNN has no implementation */
  int share_ddst;   /* bwd-data and bwd-weights take diff_dst in one layout */
  int share_src;    /* forward and bwd-weights take src in one (blocked) layout */
  Pass pass[NPASS];
};

/* A parameter's weights reordered into a primitive's layout (arena). */
typedef struct WeightCopy {
  const float *src;
  const dnnl_memory_desc_t *md;
  void *blk;
} WeightCopy;

#define MAX_WEIGHT_COPIES 256

typedef struct Cache {
  dnnl_engine_t eng;
  dnnl_stream_t strm;
  KdDnnlConv **e;
  int n, cap;
  unsigned gen; /* the ctx generation the weight copies belong to */
  int ncopies;
  WeightCopy copies[MAX_WEIGHT_COPIES];
} Cache;

static void bound_free(Bound *b) {
  if (b->reorder) dnnl_primitive_destroy(b->reorder);
  if (b->inner && b->inner != b->user) dnnl_memory_destroy(b->inner);
  if (b->user) dnnl_memory_destroy(b->user);
}

static void pass_free(Pass *p) {
  for (int i = 0; i < NARG; i++) bound_free(&p->arg[i]);
  if (p->bias) dnnl_memory_destroy(p->bias);
  if (p->scratch) dnnl_memory_destroy(p->scratch);
  if (p->prim) dnnl_primitive_destroy(p->prim);
  if (p->pd) dnnl_primitive_desc_destroy(p->pd);
  memset(p, 0, sizeof *p);
}

static void cache_free(void *ptr) {
  Cache *k = ptr;
  for (int i = 0; i < k->n; i++) {
    for (int j = 0; j < NPASS; j++) pass_free(&k->e[i]->pass[j]);
    free(k->e[i]);
  }
  free(k->e);
  if (k->strm) dnnl_stream_destroy(k->strm);
  if (k->eng) dnnl_engine_destroy(k->eng);
  free(k);
}

static Cache *cache_of(KdCtx *c) {
  Cache *k = kd_ctx_conv_cache(c);
  if (k) return k;
  k = calloc(1, sizeof *k);
  if (!k) return NULL;
  if (dnnl_engine_create(&k->eng, dnnl_cpu, 0) != dnnl_success ||
      dnnl_stream_create(&k->strm, k->eng, dnnl_stream_default_flags) != dnnl_success) {
    cache_free(k);
    return NULL;
  }
  kd_ctx_set_conv_cache(c, k, cache_free);
  return k;
}

/* ---- building ---- */

static dnnl_status_t mem_new(Cache *k, dnnl_memory_t *m, const dnnl_memory_desc_t *md) {
  return dnnl_memory_create(m, md, k->eng, DNNL_MEMORY_NONE);
}

/* BIND_IN reorders user->inner when the layouts differ; BIND_OUT inner->user;
 * BIND_ACC always has a separate inner buffer and adds it into user. */
static dnnl_status_t bound_build(Cache *k, Bound *b, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *inner_md,
                                 int kind) {
  dnnl_status_t st = mem_new(k, &b->user, user_md);
  if (st != dnnl_success) return st;
  b->same = dnnl_memory_desc_equal(user_md, inner_md);
  if (kind != BIND_ACC && b->same) {
    b->inner = b->user;
    return dnnl_success;
  }
  if ((st = mem_new(k, &b->inner, inner_md)) != dnnl_success) return st;
  b->bytes = dnnl_memory_desc_get_size(inner_md);
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  if (kind == BIND_ACC) {
    if ((st = dnnl_primitive_attr_create(&attr)) != dnnl_success) return st;
    if ((st = dnnl_post_ops_create(&po)) == dnnl_success && (st = dnnl_post_ops_append_sum(po, 1.0f)) == dnnl_success)
      st = dnnl_primitive_attr_set_post_ops(attr, po);
  }
  dnnl_primitive_desc_t rpd = NULL;
  const dnnl_memory_desc_t *from = kind == BIND_IN ? user_md : inner_md, *to = kind == BIND_IN ? inner_md : user_md;
  if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&rpd, from, k->eng, to, k->eng, attr);
  if (st == dnnl_success) st = dnnl_primitive_create(&b->reorder, rpd);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  return st;
}

/* Primitive descriptor (scratchpad from the caller), primitive, scratch. */
static dnnl_status_t pass_build(Cache *k, Pass *p, const void *op_desc, const_dnnl_primitive_desc_t hint) {
  dnnl_primitive_attr_t attr;
  dnnl_status_t st = dnnl_primitive_attr_create(&attr);
  if (st != dnnl_success) return st;
  st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
  if (st == dnnl_success) st = dnnl_primitive_desc_create(&p->pd, op_desc, attr, k->eng, hint);
  dnnl_primitive_attr_destroy(attr);
  if (st != dnnl_success) return st;
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(p->pd, dnnl_query_scratchpad_md, 0);
  p->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
  if (p->scratch_bytes && (st = mem_new(k, &p->scratch, smd)) != dnnl_success) return st;
  return dnnl_primitive_create(&p->prim, p->pd);
}

static const dnnl_memory_desc_t *query(const Pass *p, dnnl_query_t q) { return dnnl_primitive_desc_query_md(p->pd, q, 0); }

typedef struct Descs {
  dnnl_memory_desc_t x, w, y, b;             /* plain */
  dnnl_memory_desc_t x_any, w_any, y_any;    /* format any */
  dnnl_dims_t strides, dilates, pad_l, pad_r;
} Descs;

static dnnl_status_t descs_init(const KdConvGeom *g, Descs *d) {
  dnnl_dims_t xd = {g->n, g->cin, g->h, g->w}, yd = {g->n, g->cout, g->ho, g->wo}, bd = {g->cout};
  dnnl_dims_t wd = {g->groups, g->cout / g->groups, g->cin / g->groups, g->kh, g->kw};
  const dnnl_dim_t *wdims = g->groups > 1 ? wd : wd + 1;
  int wnd = g->groups > 1 ? 5 : 4;
  dnnl_format_tag_t wtag = g->groups > 1 ? dnnl_goihw : dnnl_oihw;
  dnnl_status_t st = dnnl_success;
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d->x, 4, xd, dnnl_f32, g->x_blocked ? dnnl_nChw16c : dnnl_nchw);
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d->y, 4, yd, dnnl_f32, g->y_blocked ? dnnl_nChw16c : dnnl_nchw);
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d->w, wnd, wdims, dnnl_f32, wtag);
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d->b, 1, bd, dnnl_f32, dnnl_a);
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d->x_any, 4, xd, dnnl_f32, dnnl_format_tag_any);
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d->y_any, 4, yd, dnnl_f32, dnnl_format_tag_any);
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&d->w_any, wnd, wdims, dnnl_f32, dnnl_format_tag_any);
  for (int i = 0; i < 2; i++) {
    d->strides[i] = g->stride;
    d->dilates[i] = g->dil - 1; /* oneDNN counts the gaps */
    d->pad_l[i] = d->pad_r[i] = g->pad;
  }
  return st;
}

static dnnl_status_t build_fwd(Cache *k, KdDnnlConv *p, const Descs *d) {
  Pass *f = &p->pass[FWD];
  dnnl_convolution_desc_t cd;
  dnnl_status_t st = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &d->x_any,
                                                                &d->w_any, p->g.bias ? &d->b : NULL, &d->y_any, d->strides,
                                                                d->dilates, d->pad_l, d->pad_r);
  if (st == dnnl_success) st = pass_build(k, f, &cd, NULL);
  if (st == dnnl_success) st = bound_build(k, &f->arg[IN0], &d->x, query(f, dnnl_query_src_md), BIND_IN);
  if (st == dnnl_success) st = bound_build(k, &f->arg[IN1], &d->w, query(f, dnnl_query_weights_md), BIND_IN);
  if (st == dnnl_success) st = bound_build(k, &f->arg[OUT], &d->y, query(f, dnnl_query_dst_md), BIND_OUT);
  if (st == dnnl_success && p->g.bias) st = mem_new(k, &f->bias, &d->b);
  return st;
}

static dnnl_status_t build_bwd_data(Cache *k, KdDnnlConv *p, const Descs *d) {
  Pass *b = &p->pass[BWD_DATA];
  dnnl_convolution_desc_t cd;
  dnnl_status_t st = dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &d->x_any, &d->w_any,
                                                                      &d->y_any, d->strides, d->dilates, d->pad_l, d->pad_r);
  if (st == dnnl_success) st = pass_build(k, b, &cd, p->pass[FWD].pd);
  if (st == dnnl_success) st = bound_build(k, &b->arg[IN0], &d->y, query(b, dnnl_query_diff_dst_md), BIND_IN);
  if (st == dnnl_success) st = bound_build(k, &b->arg[IN1], &d->w, query(b, dnnl_query_weights_md), BIND_IN);
  if (st == dnnl_success) st = bound_build(k, &b->arg[OUT], &d->x, query(b, dnnl_query_diff_src_md), BIND_ACC);
  return st;
}

static dnnl_status_t build_bwd_weights(Cache *k, KdDnnlConv *p, const Descs *d) {
  Pass *b = &p->pass[BWD_WEIGHTS];
  dnnl_convolution_desc_t cd;
  dnnl_status_t st = dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &d->x_any, &d->w_any,
                                                                         p->g.bias ? &d->b : NULL, &d->y_any, d->strides,
                                                                         d->dilates, d->pad_l, d->pad_r);
  if (st == dnnl_success) st = pass_build(k, b, &cd, p->pass[FWD].pd);
  if (st == dnnl_success) st = bound_build(k, &b->arg[IN0], &d->x, query(b, dnnl_query_src_md), BIND_IN);
  if (st == dnnl_success) st = bound_build(k, &b->arg[IN1], &d->y, query(b, dnnl_query_diff_dst_md), BIND_IN);
  if (st == dnnl_success) st = bound_build(k, &b->arg[OUT], &d->w, query(b, dnnl_query_diff_weights_md), BIND_ACC);
  if (st == dnnl_success && p->g.bias) st = mem_new(k, &b->bias, &d->b);
  return st;
}

/* Builds the passes in `want` (the forward always) that are not built yet;
 * 0, or -1 when oneDNN cannot (that pass is then marked and never retried). */
static int ensure(Cache *k, KdDnnlConv *p, const int want[NPASS]) {
  typedef dnnl_status_t (*BuildFn)(Cache *, KdDnnlConv *, const Descs *);
  static const BuildFn fns[NPASS] = {build_fwd, build_bwd_data, build_bwd_weights};
  Descs d;
  int have_descs = 0;
  for (int i = 0; i < NPASS; i++) {
    if (!want[i] || p->built[i] == 1) continue;
    if (p->built[i] < 0) return -1;
    if (!have_descs && descs_init(&p->g, &d) != dnnl_success) return -1;
    have_descs = 1;
    if (fns[i](k, p, &d) != dnnl_success) {
      pass_free(&p->pass[i]);
      p->built[i] = -1;
      return -1;
    }
    p->built[i] = 1;
  }
  if (p->built[BWD_DATA] == 1 && p->built[BWD_WEIGHTS] == 1)
    p->share_ddst = dnnl_memory_desc_equal(query(&p->pass[BWD_DATA], dnnl_query_diff_dst_md),
                                           query(&p->pass[BWD_WEIGHTS], dnnl_query_diff_dst_md));
  if (p->built[BWD_WEIGHTS] == 1)
    p->share_src = p->pass[FWD].arg[IN0].reorder &&
                   dnnl_memory_desc_equal(query(&p->pass[FWD], dnnl_query_src_md), query(&p->pass[BWD_WEIGHTS], dnnl_query_src_md));
  return 0;
}

KdDnnlConv *kd_dnnl_conv_get(KdCtx *c, const KdConvGeom *g, int need_dx, int need_dw) {
  Cache *k = cache_of(c);
  if (!k) return NULL;
  int threads = omp_get_max_threads();
  KdDnnlConv *p = NULL;
  for (int i = 0; i < k->n && !p; i++)
    if (k->e[i]->threads == threads && !memcmp(&k->e[i]->g, g, sizeof *g)) p = k->e[i];
  if (!p) {
    if (k->n == k->cap) {
      int cap = k->cap ? 2 * k->cap : 32;
      KdDnnlConv **e = realloc(k->e, (size_t)cap * sizeof *e);
      if (!e) return NULL;
      k->e = e, k->cap = cap;
    }
    if (!(p = calloc(1, sizeof *p))) return NULL;
    p->g = *g;
    p->threads = threads;
    k->e[k->n++] = p;
  }
  const int want[NPASS] = {1, need_dx, need_dw};
  return ensure(k, p, want) ? NULL : p;
}

/* ---- running ---- */

static int fail(KdCtx *c, dnnl_status_t st) {
  kd_ctx_fail(c, "conv2d: oneDNN failed (%s)", dnnl_status2str(st));
  return -1;
}

/* Points b at the plain buffer and, when it has a layout of its own, at an
 * arena buffer for it (`shared`, when given, instead). */
static dnnl_status_t bound_set(KdCtx *c, Cache *k, Bound *b, const void *plain, void *shared) {
  dnnl_status_t st = dnnl_memory_set_data_handle_v2(b->user, (void *)plain, k->strm);
  if (st != dnnl_success || b->inner == b->user) return st;
  void *buf = shared ? shared : kd_ctx_alloc(c, b->bytes);
  if (!buf) return dnnl_out_of_memory;
  return dnnl_memory_set_data_handle_v2(b->inner, buf, k->strm);
}

static dnnl_status_t reorder(Cache *k, const Bound *b, int to_inner) {
  if (!b->reorder) return dnnl_success;
  dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, to_inner ? b->user : b->inner}, {DNNL_ARG_TO, to_inner ? b->inner : b->user}};
  return dnnl_primitive_execute(b->reorder, k->strm, 2, a);
}

/* Weights into b (an input bound). A parameter's copy in b's layout is
 * made once per ctx generation and then found again; the copy lives until
 * the ctx is reset, so the caller must not be inside a scratch scope. */
static dnnl_status_t weights_set(KdCtx *c, Cache *k, Bound *b, const KdTensor *w) {
  dnnl_status_t st = dnnl_memory_set_data_handle_v2(b->user, w->data, k->strm);
  if (st != dnnl_success || b->inner == b->user) return st;
  const dnnl_memory_desc_t *md;
  if ((st = dnnl_memory_get_memory_desc(b->inner, &md)) != dnnl_success) return st;
  unsigned gen = kd_ctx_generation(c);
  if (k->gen != gen) k->gen = gen, k->ncopies = 0;
  for (int i = 0; w->is_param && i < k->ncopies; i++)
    if (k->copies[i].src == w->data && dnnl_memory_desc_equal(k->copies[i].md, md))
      return dnnl_memory_set_data_handle_v2(b->inner, k->copies[i].blk, k->strm);
  void *blk = kd_ctx_alloc(c, b->bytes);
  if (!blk) return dnnl_out_of_memory;
  if ((st = dnnl_memory_set_data_handle_v2(b->inner, blk, k->strm)) != dnnl_success) return st;
  if ((st = reorder(k, b, 1)) != dnnl_success) return st;
  if (w->is_param && k->ncopies < MAX_WEIGHT_COPIES) k->copies[k->ncopies++] = (WeightCopy){w->data, md, blk};
  return dnnl_success;
}

/* Runs the pass on its inner buffers (already set) plus bias and scratch. */
static dnnl_status_t run(KdCtx *c, Cache *k, Pass *p, const int keys[NARG], int bias_key, void *bias) {
  dnnl_exec_arg_t a[NARG + 2];
  int n = 0;
  for (int i = 0; i < NARG; i++) a[n++] = (dnnl_exec_arg_t){keys[i], p->arg[i].inner};
  dnnl_status_t st = dnnl_success;
  if (p->bias) {
    st = dnnl_memory_set_data_handle_v2(p->bias, bias, k->strm);
    a[n++] = (dnnl_exec_arg_t){bias_key, p->bias};
  }
  if (st == dnnl_success && p->scratch) {
    void *buf = kd_ctx_alloc(c, p->scratch_bytes);
    st = buf ? dnnl_memory_set_data_handle_v2(p->scratch, buf, k->strm) : dnnl_out_of_memory;
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
  }
  return st == dnnl_success ? dnnl_primitive_execute(p->prim, k->strm, n, a) : st;
}

int kd_dnnl_conv_forward(KdCtx *c, KdDnnlConv *p, const float *x, const KdTensor *w, const float *b, float *y, void **keep_src) {
  static const int keys[NARG] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
  Cache *k = kd_ctx_conv_cache(c);
  Pass *f = &p->pass[FWD];
  void *kept = NULL;
  if (keep_src) *keep_src = NULL;
  if (keep_src && p->share_src && !(kept = *keep_src = kd_ctx_alloc(c, f->arg[IN0].bytes))) return fail(c, dnnl_out_of_memory);
  dnnl_status_t st = weights_set(c, k, &f->arg[IN1], w);
  KdArena *arena = kd_ctx_arena(c);
  KdArenaMark mark = kd_arena_mark(arena);
  if (st == dnnl_success) st = bound_set(c, k, &f->arg[IN0], x, kept);
  if (st == dnnl_success) st = bound_set(c, k, &f->arg[OUT], y, NULL);
  if (st == dnnl_success) st = reorder(k, &f->arg[IN0], 1);
  if (st == dnnl_success) st = run(c, k, f, keys, DNNL_ARG_BIAS, (void *)b);
  if (st == dnnl_success) st = reorder(k, &f->arg[OUT], 0);
  if (st == dnnl_success) st = dnnl_stream_wait(k->strm);
  kd_arena_release(arena, mark);
  return st == dnnl_success ? 0 : fail(c, st);
}

/* The weights are already set (weights_set). A fresh gx in the layout the
 * primitive writes is its output buffer; else the sum reorder adds into
 * it (zeroed first when fresh). */
static dnnl_status_t backward_data(KdCtx *c, Cache *k, KdDnnlConv *p, const float *gy, float *gx, int gx_fresh) {
  static const int keys[NARG] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
  Pass *d = &p->pass[BWD_DATA];
  Bound *out = &d->arg[OUT];
  int direct = gx_fresh && out->same;
  if (gx_fresh && !direct) memset(gx, 0, (size_t)p->g.n * p->g.cin * p->g.h * p->g.w * sizeof(float));
  dnnl_status_t st = bound_set(c, k, &d->arg[IN0], gy, NULL);
  if (st == dnnl_success) st = bound_set(c, k, out, gx, direct ? gx : NULL);
  if (st == dnnl_success) st = reorder(k, &d->arg[IN0], 1);
  if (st == dnnl_success) st = run(c, k, d, keys, 0, NULL);
  if (st == dnnl_success && !direct) st = reorder(k, out, 0);
  return st;
}

/* gw or gb (or both) non-NULL. diff_dst is taken from bwd-data's blocked
 * copy when that pass ran and uses the same layout. */
static dnnl_status_t backward_weights(KdCtx *c, Cache *k, KdDnnlConv *p, const float *x, void *kept_src, const float *gy,
                                      int gy_ready, float *gw, float *gb) {
  static const int keys[NARG] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
  Pass *b = &p->pass[BWD_WEIGHTS];
  const Bound *dd = &p->pass[BWD_DATA].arg[IN0];
  void *shared = NULL;
  if (gy_ready && p->share_ddst && dd->inner != dd->user && dnnl_memory_get_data_handle(dd->inner, &shared) != dnnl_success)
    shared = NULL;
  float *gb_tmp = p->g.bias ? kd_ctx_alloc(c, (size_t)p->g.cout * sizeof(float)) : NULL;
  if (p->g.bias && !gb_tmp) return dnnl_out_of_memory;
  dnnl_status_t st = bound_set(c, k, &b->arg[IN0], x, kept_src);
  if (st == dnnl_success) st = bound_set(c, k, &b->arg[IN1], gy, shared);
  /* Without gw the diff weights still need a home: a dummy user buffer. */
  float *gw_dst = gw ? gw : kd_ctx_alloc(c, b->arg[OUT].bytes);
  if (st == dnnl_success) st = gw_dst ? bound_set(c, k, &b->arg[OUT], gw_dst, NULL) : dnnl_out_of_memory;
  if (st == dnnl_success && !kept_src) st = reorder(k, &b->arg[IN0], 1);
  if (st == dnnl_success && !shared) st = reorder(k, &b->arg[IN1], 1);
  if (st == dnnl_success) st = run(c, k, b, keys, DNNL_ARG_DIFF_BIAS, gb_tmp);
  if (st == dnnl_success && gw) st = reorder(k, &b->arg[OUT], 0);
  if (st == dnnl_success) st = dnnl_stream_wait(k->strm);
  if (st == dnnl_success && gb)
    for (int i = 0; i < p->g.cout; i++) gb[i] += gb_tmp[i];
  return st;
}

int kd_dnnl_conv_backward(KdCtx *c, KdDnnlConv *p, const float *x, const KdTensor *w, const float *gy, void *kept_src, float *gx,
                          int gx_fresh, float *gw, float *gb) {
  Cache *k = kd_ctx_conv_cache(c);
  if ((gx && p->built[BWD_DATA] != 1) || ((gw || gb) && p->built[BWD_WEIGHTS] != 1)) {
    kd_ctx_fail(c, "conv2d: backward primitives were not built");
    return -1;
  }
  dnnl_status_t st = gx ? weights_set(c, k, &p->pass[BWD_DATA].arg[IN1], w) : dnnl_success;
  KdArena *arena = kd_ctx_arena(c);
  KdArenaMark mark = kd_arena_mark(arena);
  if (st == dnnl_success && gx) st = backward_data(c, k, p, gy, gx, gx_fresh);
  if (st == dnnl_success && (gw || gb)) st = backward_weights(c, k, p, x, kept_src, gy, gx != NULL, gw, gb);
  if (st == dnnl_success) st = dnnl_stream_wait(k->strm);
  kd_arena_release(arena, mark);
  return st == dnnl_success ? 0 : fail(c, st);
}
