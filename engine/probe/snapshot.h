/* A probe snapshot: what the UI draws for one moment of a run, computed
 * from real tensors of the probe images (see prober.h) — a plain struct of
 * metadata plus named float arrays with shapes. Snapshots are immutable
 * once made and reference counted, so the run thread can publish one while
 * the UI thread still draws an older one (publish.h).
 *
 * Field names (i = probe image 0.., L = level name "P3".. from the stride;
 * every map is H_L x W_L of that level unless said otherwise):
 *   img<i>.rgb               (h, w, 3)  the network input, denormalised, 0..255
 *                                       (in files; in memory it is ->rgb)
 *   img<i>.gt                (G, 6)     x1,y1,x2,y2 (input pixels), label, crowd
 *   img<i>.det.t / .det.s    (D, 6)     teacher / student detections:
 *                                       x1,y1,x2,y2, score, label (D may be 0)
 *   img<i>.<L>.fg            (H, W)     1 where a cell centre lies in a
 *                                       non-crowd GT box (or the cell holds a
 *                                       box centre), else 0
 *   img<i>.<L>.t_energy      (H, W)     mean_c T^2 (teacher FPN feature)
 *   img<i>.<L>.s_energy      (H, W)     mean_c S^2 (student FPN feature)
 *   img<i>.<L>.gap           (H, W)     mean_c (S - T)^2, raw features, no
 *                                       method's view (only when the widths agree)
 *   img<i>.<L>.gap.<m>       (H, W)     method m's loss map (distill/method.h,
 *                                       KdDistillGap) when m is active: what its
 *                                       feature loss adds up at each cell, after
 *                                       its adapter and normalisation, with its
 *                                       masks, weights and normalisers; summed
 *                                       over images, levels and cells it is the
 *                                       probe batch's KdMethod.gap_parts
 *   img<i>.<L>.t_sattn / s_sattn (H, W) spatial attention H*W*softmax_hw(
 *                                       mean_c|X| / temp) (FGD's definition)
 *   img<i>.<L>.t_cattn / s_cattn (C)    channel attention C*softmax_c(
 *                                       mean_hw|X| / temp)
 *   img<i>.<L>.grad.<src>    (H, W)     ||dL_src/dS||_2 over channels per
 *                                       pixel, S = student FPN feature; src =
 *                                       "det" (detection loss), each active
 *                                       method's name (its weighted loss),
 *                                       "total" (norm of the summed vectors)
 *   img<i>.<L>.mask.<method>.<name>     every mask the method exposed for
 *                                       that level: (H, W), (C) for channel
 *                                       masks, else its per-image shape; a
 *                                       name already starting with
 *                                       "<method>." is kept ("mask.defeat.fg");
 *                                       CSGR's mask.csgr.feat_t / feat_s (C, H, W)
 *                                       are its standardised features (at most
 *                                       KD_PROBE_FEAT_BYTES of such fields) and
 *                                       mask.csgr.temps (2) its tau_r, tau_c
 *   grad_fgbg.<src>          (n, nlev, 2)  mean of grad.<src> over fg / bg
 *                                       cells (0 where a set is empty)
 *   fgbg_count               (n, nlev, 2)  number of fg / bg cells
 *   inst.t_xy / inst.s_xy    (M, 2)     RoI-average-pooled teacher / student
 *                                       features of each non-crowd GT box on
 *                                       the level whose anchors fit it,
 *                                       projected on the teacher's PCA axes
 *                                       (s_xy only when the widths agree;
 *                                       without a teacher: the student's own
 *                                       PCA and no t_xy)
 *   inst.image / .gt / .level / .label (M)  probe image, index into
 *                                       img<i>.gt, level index, class
 *   pca.mean (C), pca.axes (2, C), pca.var (3)  the basis: teacher mean,
 *                                       unit axes, variance along them + total
 *   <method>.<name>                     a method's whole table of the probe
 *                                       batch (KdDistillOut.tables): gk's
 *     gk.inst (R, 10)                   instances (positive anchors): image,
 *                                       level, class, x1,y1,x2,y2, q_s, q_t, w
 *                                       (q -2: the class has no prototypes)
 *     gk.proto_t.<L> / gk.proto_s.<L> (M, C_t / C_s), gk.proto_label.<L> (M)
 *                                       the level's prototypes (teacher row k
 *                                       and student row k: one instance)
 * Teacher fields are absent without a teacher. docs/SNAPSHOTS.md has the
 * details and the file format. */
#ifndef KD_PROBE_SNAPSHOT_H
#define KD_PROBE_SNAPSHOT_H

#include <stdint.h>

#include "train/trainer.h"

#define KD_PROBE_MAX_IMAGES 16
#define KD_SNAP_NAME 64
/* At most this many bytes of per-image (C, H, W) mask fields (feature
 * copies such as mask.csgr.feat_t) in one snapshot. */
#define KD_PROBE_FEAT_BYTES ((size_t)2 << 20)

typedef struct KdSnapField {
  char name[KD_SNAP_NAME];
  int ndim;     /* 1..4 (0 for a scalar) */
  int shape[4]; /* a dim may be 0 (no detections) */
  size_t numel;
  float *data;
} KdSnapField;

typedef struct KdSnapshot {
  int step;           /* training steps completed when captured */
  double time;        /* wall clock, seconds since the epoch */
  double capture_s;   /* what the capture cost */
  int nimages, img_h, img_w;
  int image_index[KD_PROBE_MAX_IMAGES]; /* validation-set indices */
  int64_t image_id[KD_PROBE_MAX_IMAGES];
  int nlev;
  int strides[KD_MAX_LEVELS];
  int t_channels, s_channels; /* t_channels 0 without a teacher */
  float attn_temp;
  char methods[256];  /* active methods, "fitnet,defeat"; "" for none */
  /* The training step's loss parts (as logged), and the same losses on
   * the probe images in eval mode. */
  int nparts, nprobe_parts;
  KdLossPart parts[KD_MAX_PARTS], probe_parts[KD_MAX_PARTS];
  int nclasses;
  char **class_names; /* [nclasses] */
  uint8_t *rgb;       /* [nimages, img_h, img_w, 3] */
  int nfields;
  KdSnapField *fields;
  /* private */
  int cap_fields;
  _Atomic int refs;
} KdSnapshot;

/* An empty snapshot holding one reference. */
KdSnapshot *kd_snapshot_new(void);
KdSnapshot *kd_snapshot_ref(KdSnapshot *s);
/* Drops a reference; the last one frees. NULL is fine. */
void kd_snapshot_free(KdSnapshot *s);

/* The named field, or NULL. */
const KdSnapField *kd_snapshot_find(const KdSnapshot *s, const char *name);
const KdSnapField *kd_snapshot_findf(const KdSnapshot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Level name of level l ("P3" for stride 8) into buf. */
const char *kd_snapshot_level_name(const KdSnapshot *s, int l, char *buf, int len);

/* Builders (prober and file reader): a new zeroed field; NULL when out of
 * memory or the name is taken. The returned pointer is valid until the
 * next add (the field array grows); its ->data for the snapshot's life. */
KdSnapField *kd_snapshot_add(KdSnapshot *s, const char *name, int ndim, const int *shape);
KdSnapField *kd_snapshot_add1(KdSnapshot *s, const char *name, int d0);
KdSnapField *kd_snapshot_add2(KdSnapshot *s, const char *name, int d0, int d1);
int kd_snapshot_set_classes(KdSnapshot *s, int n, const char *const *names);

#endif
