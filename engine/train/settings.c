#include "train/settings.h"

#include <stdio.h>
#include <string.h>

static const char *const bn_modes[] = {"train", "eval", "frozen", NULL};
static const char *const norms[] = {"none", "gn", NULL};
static const char *const optims[] = {"sgd", "adamw", NULL};
static const char *const scheds[] = {"cosine", "step", "constant", NULL};
static const char *const box_losses[] = {"smooth_l1", "giou", NULL};
static const char *const extra_froms[] = {"p5", "c5", "pool", NULL}; /* KdExtraKind order */
static const char *const resizes[] = {"letterbox", "stretch", "torchvision", NULL};
static const char *const nan_sites[] = {"loss", "gradient", NULL};
static const char *const reduces[] = {"allreduce", "ordered", NULL};

#define F(k, l, d, lo, hi, lg, lv, h) {k, l, KD_CFG_FLOAT, d, lo, hi, lg, lv, NULL, NULL, h, {0, 0}, NULL, NULL}
/* A live setting the window's sidebar shows: with its symbol and grid. */
#define FL(k, sym, l, d, lo, hi, lg, grid, h) {k, l, KD_CFG_FLOAT, d, lo, hi, lg, 1, NULL, NULL, h, {0, 0}, sym, grid}
#define I(k, l, d, lo, hi, h) {k, l, KD_CFG_INT, d, lo, hi, 0, 0, NULL, NULL, h, {0, 0}, NULL, NULL}
#define B(k, l, d, h) {k, l, KD_CFG_BOOL, d, 0, 1, 0, 0, NULL, NULL, h, {0, 0}, NULL, NULL}
#define E(k, l, d, ch, h) {k, l, KD_CFG_ENUM, 0, 0, 0, 0, 0, d, ch, h, {0, 0}, NULL, NULL}
#define S(k, l, d, h) {k, l, KD_CFG_STRING, 0, 0, 0, 0, 0, d, NULL, h, {0, 0}, NULL, NULL}

static const KdParamDesc descs[] = {
    S("name", "Run name", "run", "Name used for the run directory"),
    S("model.head", "Head", "retinanet",
      "Head kind (engine/model/head.h): retinanet, faster_rcnn (RPN + RoI head; rpn.* and roi.* settings), "
      "or gfl (one anchor per location, ATSS, QFL + DFL + GIoU; gfl.* and atss.* settings)"),
    I("model.depth", "ResNet depth", 18, 10, 101, "Backbone depth: 10, 18, 34, 50 or 101"),
    I("model.width", "Base width", 32, 1, 512, "Channels of the first stage (torchvision: 64)"),
    E("model.bn", "Backbone BN", "train", bn_modes, "BatchNorm mode: batch statistics, running statistics, or frozen"),
    I("model.fpn_channels", "FPN channels", 64, 1, 1024, "Width of the FPN outputs and head"),
    I("model.fpn_first_level", "First FPN level", 3, 2, 3, "3: P3..P5 from C3..C5 (RetinaNet); 2: P2..P5 from C2..C5 (Faster R-CNN's FPN)"),
    I("model.extra_levels", "Extra levels", 0, 0, 2, "Levels above P5: 0, 1 (P6) or 2 (P6, P7)"),
    E("model.extra_from", "Extra levels from", "p5", extra_froms,
      "p5: 3x3/2 convs on P5 (torchvision's LastLevelP6P7(256, 256), RetinaNet); c5: the same on C5 (LastLevelP6P7(2048, 256), "
      "RetinaNet v2); pool: P6 = P5 subsampled by a 1x1/2 max pool (LastLevelMaxPool, Faster R-CNN; one level)"),
    I("model.head_convs", "Head convs", 4, 0, 8, "3x3 conv+ReLU layers per head tower"),
    E("model.head_norm", "Head norm", "none", norms, "Normalisation in the head towers"),
    I("model.num_classes", "Classes", 10, 1, 1000, "Must match the data set"),
    F("model.prior_prob", "Prior prob", 0.01, 1e-4, 0.5, 1, 0, "Initial foreground probability of the class logits"),
    F("anchor.size_mult", "Anchor size", 4, 0.5, 16, 0, 0, "Anchor base size = size_mult x stride (RetinaNet; Faster R-CNN: rpn.anchor_sizes)"),
    S("rpn.anchor_sizes", "RPN anchor sizes", "32,64,128,256,512",
      "Faster R-CNN: one anchor size in px per neck level, comma-separated (torchvision's AnchorGenerator sizes)"),
    S("rpn.aspect_ratios", "RPN aspect ratios", "0.5,1,2", "Faster R-CNN: anchor aspect ratios h/w at every location, comma-separated"),
    S("data.dir", "Data dir", "", "COCO-layout data directory; empty: the default fashion-det set"),
    I("data.size", "Input size", 128, 32, 2048, "Network input side in pixels"),
    I("data.holdout", "Held-out images", 0, 0, 1000000,
      "Training images held out of training and evaluated instead of val, to choose weights without val (0: off)"),
    E("data.resize", "Resize", "letterbox", resizes,
      "Keep aspect ratio with padding (centred), stretch, or torchvision's detection resize (data.min_size, data.max_size; top-left)"),
    I("data.min_size", "Min side", 800, 1, 4096, "data.resize=torchvision: the short side's target (torchvision: 800)"),
    I("data.max_size", "Max side", 1333, 1, 4096,
      "data.resize=torchvision: the long side's limit (torchvision: 1333); the input is data.size square, padded bottom-right"),
    F("data.hflip", "Flip prob", 0.5, 0, 1, 0, 0, "Horizontal flip probability"),
    F("data.jitter", "Colour jitter", 0.2, 0, 1, 0, 0, "Brightness/contrast/saturation jitter strength"),
    I("data.workers", "Loader threads", 1, 1, 8, "Decode threads"),
    I("train.batch", "Batch", 8, 1, 256, "Images per step"),
    I("train.steps", "Steps", 3000, 1, 10000000, "Training steps"),
    E("train.optimizer", "Optimizer", "sgd", optims, "SGD with momentum or AdamW"),
    FL("train.lr", "η", "Learning rate", 0.01, 1e-6, 1, 1, "1,2,5", "Base learning rate"),
    F("train.momentum", "Momentum", 0.9, 0, 0.999, 0, 0, "SGD momentum"),
    F("train.weight_decay", "Weight decay", 1e-4, 0, 0.1, 0, 0, "L2 (SGD) or decoupled (AdamW) weight decay"),
    B("train.decay_norm_bias", "Decay norms", 0, "Apply weight decay to norm and bias parameters too"),
    FL("train.clip_norm", "‖g‖_max", "Grad clip", 10, 0, 1000, 0, "step 5", "Global gradient-norm clip (0: off)"),
    E("train.schedule", "Schedule", "cosine", scheds, "Learning-rate schedule after warm-up"),
    I("train.warmup_steps", "Warm-up", 200, 0, 100000, "Linear warm-up steps"),
    I("train.seed", "Seed", 1, 0, 2147483647, "Seed for init, data order and augmentation"),
    I("train.threads", "Threads", 0, 0, 256, "Worker threads (0: all cores; under mpirun, the cores shared among the ranks on the machine)"),
    E("train.reduce", "Gradient reduction", "allreduce", reduces,
      "Data-parallel runs: allreduce (MPI's own summation order, which its algorithm choice decides) or ordered (rank 0 sums "
      "the ranks' gradients in rank order and broadcasts them: slower, the same bits for a given number of ranks)"),
    I("train.log_every", "Log every", 1, 1, 100000, "Steps between metrics lines (the window plots every line)"),
    I("train.eval_every", "Eval every", 1000, 0, 10000000, "Steps between COCO evaluations (0: only at the end)"),
    I("train.checkpoint_every", "Checkpoint every", 500, 1, 10000000, "Steps between checkpoints"),
    I("train.eval_images", "Eval images", 0, 0, 1000000, "Validation images per evaluation (0: all)"),
    F("loss.focal_alpha", "Focal alpha", 0.25, 0, 1, 0, 0, "Focal loss alpha"),
    F("loss.focal_gamma", "Focal gamma", 2, 0, 5, 0, 0, "Focal loss gamma"),
    E("loss.box", "Box loss", "smooth_l1", box_losses, "Regression loss on positive anchors"),
    F("loss.smooth_l1_beta", "Smooth-L1 beta", 0.11, 0, 1, 0, 0, "Smooth-L1 transition point (0: L1)"),
    FL("loss.box_weight", "w_box", "Box weight", 1, 0, 100, 0, "step 0.5", "Weight of the regression loss (GFL: of its GIoU loss, 2 in its presets)"),
    F("loss.qfl_beta", "QFL beta", 2, 0, 5, 0, 0, "GFL: Quality Focal Loss exponent on |quality - score|"),
    FL("loss.dfl_weight", "w_dfl", "DFL weight", 0.25, 0, 100, 1, "1,1.6,2,2.5,5,8", "GFL: weight of the Distribution Focal Loss on the side distributions"),
    I("gfl.reg_max", "GFL bins", 16, 1, 64, "GFL: each box side is a distribution over bins 0..reg_max (in strides)"),
    I("atss.topk", "ATSS top-k", 9, 1, 64, "GFL: ATSS candidates per level and GT box (nearest anchor centres)"),
    S("train.init_checkpoint", "Start from", "", "Weights to start the trained model from (fine-tuning, warm restarts); the optimizer starts fresh"),
    S("teacher.config", "Teacher config", "", "Config file of the teacher detector (distillation)"),
    S("teacher.checkpoint", "Teacher weights", "", "Safetensors checkpoint of the teacher"),
    B("student.init_from_teacher", "Inherit neck+head", 0, "Initialise the student's FPN and head from the teacher (FGD/PGD inheriting)"),
    F("probe.budget", "Probe budget", 0.10, 0, 1, 0, 0, "Share of training time the probes (the window's maps) may take; 0: no snapshots"),
    S("probe.images", "Probe images", "4",
      "Validation images the probes look at: a count N (the first N, 1-16) or a list of validation indices "
      "(3,17,42; one index as 17,)"),
    F("eval.score_thresh", "Score threshold", 0.05, 0, 1, 0, 0, "Detections below are dropped"),
    F("eval.nms_iou", "NMS IoU", 0.5, 0, 1, 0, 0, "Class-wise NMS threshold"),
    I("eval.topk", "Top-k per level", 1000, 1, 100000, "Candidates per level before NMS"),
    I("eval.max_dets", "Max detections", 100, 1, 10000, "Detections per image"),
    /* Test hooks (docs/RELIABILITY.md): never set by a normal run. */
    I("debug.inject_nan_step", "Inject NaN at step", 0, 0, 10000000,
      "Test hook: make step N's loss or gradient NaN, as a diverging run would (0: off)"),
    E("debug.inject_nan_in", "Inject NaN into", "loss", nan_sites, "Test hook: where debug.inject_nan_step puts the NaN"),
    I("debug.inject_nan_rank", "Inject NaN on rank", -1, -1, 100000,
      "Test hook: the data-parallel rank debug.inject_nan_step fires on (-1: every rank)"),
};

/* Faster R-CNN's RPN: torchvision's FasterRCNN arguments rpn_<name>. */
#define RI(f, l, d, lo, hi, h) KD_SETTING_INT(KdRpnCfg, "rpn", f, NULL, l, d, lo, hi, NULL, 0, h)
#define RF(f, l, d, lo, hi, h) KD_SETTING_FLOAT(KdRpnCfg, "rpn", f, NULL, l, d, lo, hi, 0, NULL, 0, h)
static const KdParamDesc rpn_descs[] = {
    RI(conv_depth, "RPN convs", 1, 1, KD_RPN_MAX_CONVS, "Faster R-CNN: 3x3 conv+ReLU layers of the RPN head (torchvision: 1)"),
    RI(pre_nms_top_n_train, "RPN pre-NMS (train)", 2000, 1, 1000000, "Proposals per level and image kept before NMS, training"),
    RI(pre_nms_top_n_test, "RPN pre-NMS (test)", 1000, 1, 1000000, "Proposals per level and image kept before NMS, evaluation"),
    RI(post_nms_top_n_train, "RPN post-NMS (train)", 2000, 1, 1000000, "Proposals per image after NMS, training"),
    RI(post_nms_top_n_test, "RPN post-NMS (test)", 1000, 1, 1000000, "Proposals per image after NMS, evaluation"),
    RF(nms_thresh, "RPN NMS IoU", 0.7, 0, 1, "IoU above which NMS drops a proposal (within its level)"),
    RF(min_size, "RPN min size", 1e-3, 0, 1000, "Proposals with a side below this (px) are dropped"),
    RF(score_thresh, "RPN score threshold", 0, 0, 0.99, "Proposals with objectness probability below are dropped"),
    RF(fg_iou_thresh, "RPN fg IoU", 0.7, 0, 1, "Anchors at this IoU with a GT box or above are positive (and each GT's best)"),
    RF(bg_iou_thresh, "RPN bg IoU", 0.3, 0, 1, "Anchors below this IoU with every GT box are negative"),
    RI(batch_size_per_image, "RPN anchors per image", 256, 1, 100000, "Anchors sampled per image for the RPN loss"),
    RF(positive_fraction, "RPN positive fraction", 0.5, 0, 1, "Largest share of positives among the sampled anchors"),
};

/* Faster R-CNN's RoI head (torchvision's box_* arguments and
 * MultiScaleRoIAlign's). Its score threshold, NMS IoU and detections per
 * image are eval.score_thresh, eval.nms_iou and eval.max_dets. */
static const char *const box_heads[] = {"twomlp", "4conv1fc", NULL};
/* key "roi.<k>" bound to the member f (a path: pool.out_size) */
#define OI(k, f, l, d, lo, hi, h) {"roi." k, l, KD_CFG_INT, d, lo, hi, 0, 0, NULL, NULL, h, KD_FIELD(KdRoiHeadCfg, f, int), NULL, NULL}
#define OF(k, f, l, d, lo, hi, h) {"roi." k, l, KD_CFG_FLOAT, d, lo, hi, 0, 0, NULL, NULL, h, KD_FIELD(KdRoiHeadCfg, f, float), NULL, NULL}
static const KdParamDesc roi_descs[] = {
    E("roi.box_head", "Box head", "twomlp", box_heads,
      "Faster R-CNN: twomlp (torchvision's TwoMLPHead: fc6, fc7) or 4conv1fc (FastRCNNConvFCHead: 4 3x3 convs + 1 fc)"),
    OI("representation", representation, "Box head width", 1024, 1, 65536, "Width of the box head's fully connected layers"),
    OI("conv_channels", conv_channels, "Box head convs", 256, 1, 4096, "4conv1fc: channels of the 4 convs"),
    {"roi.conv_gn", "Box head GN", KD_CFG_BOOL, 0, 0, 1, 0, 0, NULL, NULL, "4conv1fc: GroupNorm(32) after each conv (no conv bias)",
     KD_FIELD(KdRoiHeadCfg, conv_gn, int), NULL, NULL},
    OI("out_size", pool.out_size, "RoI size", 7, 1, 64, "RoI Align output side (torchvision: 7)"),
    OI("sampling_ratio", pool.sampling_ratio, "RoI sampling", 2, 0, 16,
       "RoI Align samples per bin side (0: adaptive, ceil(RoI size / out_size))"),
    OF("canonical_scale", pool.canonical_scale, "RoI canonical scale", 224, 1, 4096,
       "Level mapper: a box of side canonical_scale px pools from level canonical_level (torchvision: 224)"),
    OI("canonical_level", pool.canonical_level, "RoI canonical level", 4, 0, 10,
       "Level mapper: P<floor(k0 + log2(side / canonical_scale))>, clamped to the RoI levels P2..P5 (torchvision: 4)"),
    OF("fg_iou", fg_iou, "RoI fg IoU", 0.5, 0, 1, "Proposals at this IoU with a GT box or above are foreground"),
    OF("bg_iou", bg_iou, "RoI bg IoU", 0.5, 0, 1, "Proposals below this IoU with every GT box are background"),
    OI("batch_per_image", batch_per_image, "RoIs per image", 512, 1, 100000,
       "RoIs sampled per image (among proposals and GT boxes) for the RoI loss"),
    OF("pos_fraction", pos_fraction, "RoI positive fraction", 0.25, 0.01, 1, "Largest share of foreground among the sampled RoIs"),
};

int kd_settings_register(KdConfig *c) {
  if (kd_config_register(c, descs, (int)(sizeof descs / sizeof descs[0])) ||
      kd_config_register(c, rpn_descs, (int)(sizeof rpn_descs / sizeof rpn_descs[0])))
    return -1;
  return kd_config_register(c, roi_descs, (int)(sizeof roi_descs / sizeof roi_descs[0]));
}

static int enum_index(const char *v, const char *const *choices) {
  for (int i = 0; choices[i]; i++)
    if (!strcmp(v, choices[i])) return i;
  return 0;
}

int kd_settings_model(const KdConfig *c, KdModelCfg *m, KdError *err) {
  kd_model_cfg_default(m);
  m->backbone.depth = kd_config_int(c, "model.depth");
  m->backbone.width = kd_config_int(c, "model.width");
  m->backbone.bn = (KdBnMode)enum_index(kd_config_str(c, "model.bn"), bn_modes);
  m->neck.channels = kd_config_int(c, "model.fpn_channels");
  m->neck.first_level = kd_config_int(c, "model.fpn_first_level");
  m->neck.extra_levels = kd_config_int(c, "model.extra_levels");
  m->neck.extra = (KdExtraKind)enum_index(kd_config_str(c, "model.extra_from"), extra_froms);
  KdHeadCfg *h = &m->head;
  const char *kind = kd_config_str(c, "model.head");
  if (strlen(kind) >= sizeof h->kind) return kd_error(err, "model.head: '%s' is not a head kind (too long)", kind);
  snprintf(h->kind, sizeof h->kind, "%s", kind);
  h->convs = kd_config_int(c, "model.head_convs");
  h->gn = !strcmp(kd_config_str(c, "model.head_norm"), "gn");
  h->num_classes = kd_config_int(c, "model.num_classes");
  h->prior_prob = (float)kd_config_num(c, "model.prior_prob");
  h->anchors.size_mult = (float)kd_config_num(c, "anchor.size_mult");
  h->gfl.reg_max = kd_config_int(c, "gfl.reg_max");
  h->gfl.topk = kd_config_int(c, "atss.topk");
  KdRpnCfg *r = &h->rpn;
  if (kd_config_fill(c, rpn_descs, (int)(sizeof rpn_descs / sizeof rpn_descs[0]), r, err)) return -1;
  r->nsizes = kd_anchor_parse_list("rpn.anchor_sizes", kd_config_str(c, "rpn.anchor_sizes"), r->sizes, KD_ANCHOR_MAX_LEVELS, err);
  r->nratios = kd_anchor_parse_list("rpn.aspect_ratios", kd_config_str(c, "rpn.aspect_ratios"), r->ratios, KD_ANCHOR_MAX_RATIOS, err);
  if (r->nsizes < 0 || r->nratios < 0) return -1;
  KdRoiHeadCfg *o = &h->roi;
  if (kd_config_fill(c, roi_descs, (int)(sizeof roi_descs / sizeof roi_descs[0]), o, err)) return -1;
  snprintf(o->box_head, sizeof o->box_head, "%s", kd_config_str(c, "roi.box_head"));
  o->num_classes = h->num_classes;
  o->score_thresh = (float)kd_config_num(c, "eval.score_thresh");
  o->nms_thresh = (float)kd_config_num(c, "eval.nms_iou");
  o->detections_per_img = kd_config_int(c, "eval.max_dets");
  return kd_model_cfg_check(m, err);
}

int kd_settings_optim(const KdConfig *c, KdOptimCfg *o, KdError *err) {
  kd_optim_cfg_default(o);
  o->kind = (KdOptKind)enum_index(kd_config_str(c, "train.optimizer"), optims);
  o->lr = (float)kd_config_num(c, "train.lr");
  o->momentum = (float)kd_config_num(c, "train.momentum");
  o->weight_decay = (float)kd_config_num(c, "train.weight_decay");
  o->decay_norm_and_bias = kd_config_int(c, "train.decay_norm_bias");
  o->clip_norm = (float)kd_config_num(c, "train.clip_norm");
  o->schedule = (KdSchedKind)enum_index(kd_config_str(c, "train.schedule"), scheds);
  o->total_steps = kd_config_int(c, "train.steps");
  o->warmup_steps = kd_config_int(c, "train.warmup_steps");
  /* A short trial run (--steps 30) keeps the warm-up inside the run. */
  if (o->warmup_steps > o->total_steps / 2) o->warmup_steps = o->total_steps / 2;
  (void)err;
  return 0;
}

void kd_settings_det_loss(const KdConfig *c, KdDetLossCfg *l) {
  l->focal_alpha = (float)kd_config_num(c, "loss.focal_alpha");
  l->focal_gamma = (float)kd_config_num(c, "loss.focal_gamma");
  l->giou = !strcmp(kd_config_str(c, "loss.box"), "giou");
  l->smooth_l1_beta = (float)kd_config_num(c, "loss.smooth_l1_beta");
  l->box_weight = (float)kd_config_num(c, "loss.box_weight");
  l->qfl_beta = (float)kd_config_num(c, "loss.qfl_beta");
  l->dfl_weight = (float)kd_config_num(c, "loss.dfl_weight");
}

int kd_settings_post(const KdConfig *c, KdPostCfg *p, KdError *err) {
  kd_post_cfg_default(p);
  p->score_thr = (float)kd_config_num(c, "eval.score_thresh");
  p->nms_iou = (float)kd_config_num(c, "eval.nms_iou");
  p->topk_per_level = kd_config_int(c, "eval.topk");
  p->max_det = kd_config_int(c, "eval.max_dets");
  return kd_post_cfg_check(p, err);
}

int kd_settings_image(const KdConfig *c, KdImageCfg *img, KdError *err) {
  kd_image_cfg_default(img);
  img->size = kd_config_int(c, "data.size");
  const char *rs = kd_config_str(c, "data.resize");
  img->resize = !strcmp(rs, "stretch") ? KD_RESIZE_STRETCH : !strcmp(rs, "torchvision") ? KD_RESIZE_TORCHVISION : KD_RESIZE_LETTERBOX;
  img->min_size = kd_config_int(c, "data.min_size");
  img->max_size = kd_config_int(c, "data.max_size");
  img->hflip_prob = (float)kd_config_num(c, "data.hflip");
  float j = (float)kd_config_num(c, "data.jitter");
  img->brightness = img->contrast = img->saturation = j;
  img->hue = j / 10.0f;
  return kd_image_cfg_check(img, err);
}
