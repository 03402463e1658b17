/* Prefetch loader: same seed => same batches whatever the timing; every
 * image once per epoch; resume at any step; in-order evaluation with the
 * last partial batch; boxes follow the pixels under flips; bad images are
 * replaced (training) or left out (evaluation) with a warning naming them. */
#include <math.h>
#include <time.h>

#include "check.h"
#include "data/loader.h"
#include "fixture.h"

#define N 21

static const uint8_t grey[3] = {128, 128, 128}, red[3] = {255, 0, 0};

/* N images of mixed sizes, each with one red rectangle = its box. */
static void make_set(int bad) {
  fx_mkdir("set/annotations");
  fx_mkdir("set/images/train");
  char json[16384], name[64];
  int n = snprintf(json, sizeof json, "{\"categories\": [{\"id\": 1, \"name\": \"a\"}, {\"id\": 2, \"name\": \"b\"}],\n\"images\": [\n");
  for (int i = 0; i < N; i++) {
    int w = i % 3 == 0 ? 64 : i % 3 == 1 ? 40 : 96, h = i % 3 == 0 ? 48 : i % 3 == 1 ? 80 : 96;
    n += snprintf(json + n, sizeof json - (size_t)n, "%s{\"id\": %d, \"file_name\": \"%03d.jpg\", \"width\": %d, \"height\": %d}",
                  i ? ",\n" : "", 100 + i, i, w, h);
    snprintf(name, sizeof name, "set/images/train/%03d.jpg", i);
    fx_jpeg(name, w, h, grey, 4 + i % 7, 6, 4 + i % 7 + 20, 30, red);
  }
  n += snprintf(json + n, sizeof json - (size_t)n, "],\n\"annotations\": [\n");
  for (int i = 0; i < N; i++)
    n += snprintf(json + n, sizeof json - (size_t)n, "%s{\"id\": %d, \"image_id\": %d, \"category_id\": %d, \"bbox\": [%d, 6, 20, 24]}",
                  i ? ",\n" : "", i + 1, 100 + i, 1 + i % 2, 4 + i % 7);
  snprintf(json + n, sizeof json - (size_t)n, "]}\n");
  fx_text("set/annotations/instances_train.json", json);
  if (bad) {
    fx_text("set/images/train/005.jpg", "this is not a JPEG");
    KdImage im = {0};
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    KdError e;
    kd_read_file(fx_path("set/images/train/006.jpg"), 1 << 20, &buf, &cap, &len, &e);
    fx_write("set/images/train/006.jpg", buf, len / 2);
    free(buf);
    kd_image_free(&im);
  }
}

static int same_batch(const KdBatch *a, const KdBatch *b) {
  if (a->n != b->n || a->step != b->step || a->box_off[a->n] != b->box_off[b->n]) return 0;
  int nb = a->box_off[a->n];
  return !memcmp(a->images, b->images, (size_t)a->n * 3 * a->h * a->w * sizeof(float)) &&
         !memcmp(a->index, b->index, (size_t)a->n * sizeof(int)) &&
         !memcmp(a->boxes, b->boxes, (size_t)nb * 4 * sizeof(float)) &&
         !memcmp(a->labels, b->labels, (size_t)nb * sizeof(int)) &&
         !memcmp(a->xform, b->xform, (size_t)a->n * sizeof(KdXform));
}

static KdLoader *open_loader(const KdDataset *ds, KdLoaderCfg *c) {
  KdError e;
  KdLoader *l = kd_loader_new(ds, c, &e);
  if (!l) fprintf(stderr, "kd_loader_new: %s\n", e.msg);
  return l;
}

/* Boxes equal the dataset's boxes through the batch's transform, and the
 * pixels inside each box are red. */
static void check_boxes(const KdDataset *ds, const KdBatch *b, const KdImageCfg *ic) {
  for (int i = 0; i < b->n; i++) {
    KdDatasetImage im = kd_dataset_image(ds, b->index[i]);
    CHECK(b->box_off[i + 1] - b->box_off[i] == im.n_boxes);
    float want[4];
    kd_xform_boxes_to_input(&b->xform[i], im.boxes, want, 1);
    const float *got = b->boxes + 4 * b->box_off[i];
    for (int k = 0; k < 4; k++) CHECK_NEAR(got[k], want[k], 1e-5);
    CHECK(b->labels[b->box_off[i]] == im.labels[0]);
    /* Red: R channel well above its grey level at the centre. */
    int cx = (int)((got[0] + got[2]) / 2), cy = (int)((got[1] + got[3]) / 2);
    const float *img = b->images + (size_t)i * 3 * b->h * b->w;
    float r = img[cy * b->w + cx] * ic->std[0] + ic->mean[0], g = img[b->h * b->w + cy * b->w + cx] * ic->std[1] + ic->mean[1];
    CHECK_MSG(r > g + 0.3f, "image %d: centre of box not red (r %.2f g %.2f)", b->index[i], r, g);
  }
}

int main(void) {
  fx_tmpdir("loader");
  make_set(0);
  KdError e;
  KdDataset *ds = NULL;
  if (kd_dataset_open_dir(fx_path("set"), "train", &ds, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  KdLoaderCfg c;
  kd_loader_cfg_default(&c);
  c.batch_size = 4, c.seed = 11, c.image.size = 64;

  /* Determinism: a fast consumer and a slow one see the same batches. */
  KdLoader *a = open_loader(ds, &c), *b = open_loader(ds, &c);
  CHECK(kd_loader_batches_per_epoch(a) == N / 4);
  const KdBatch *ba, *bb;
  int flips = 0;
  for (int s = 0; s < 12; s++) {
    CHECK(kd_loader_next(a, &ba, &e) == 0 && ba);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    CHECK(kd_loader_next(b, &bb, &e) == 0 && bb);
    if (!ba || !bb) break;
    CHECK_MSG(same_batch(ba, bb), "step %d differs", s);
    CHECK(ba->step == s && ba->epoch == s / (N / 4) && ba->n == 4);
    check_boxes(ds, ba, &c.image);
    for (int i = 0; i < ba->n; i++) flips += ba->xform[i].flipped;
  }
  CHECK(flips > 5 && flips < 43); /* augmentation really flips, not always */
  kd_loader_free(b);

  /* Resume at step 7 = the fresh loader's step 7 on. */
  KdLoaderCfg rc = c;
  rc.start_step = 7;
  KdLoader *r = open_loader(ds, &rc), *f = open_loader(ds, &c);
  for (int s = 0; s < 7; s++) kd_loader_next(f, &ba, &e);
  for (int s = 7; s < 11; s++) {
    CHECK(kd_loader_next(f, &ba, &e) == 0 && kd_loader_next(r, &bb, &e) == 0 && ba && bb);
    if (ba && bb) CHECK_MSG(same_batch(ba, bb), "resumed step %d differs", s);
  }
  kd_loader_free(r), kd_loader_free(f), kd_loader_free(a);

  /* Shards (data-parallel ranks): slice k of 2 of each global batch is
   * images 2k, 2k+1 of the unsharded batch, augmentation included. */
  {
    KdLoaderCfg s0 = c, s1 = c;
    s0.shards = s1.shards = 2, s1.shard = 1;
    KdLoader *full = open_loader(ds, &c), *h0 = open_loader(ds, &s0), *h1 = open_loader(ds, &s1);
    const KdBatch *b0, *b1;
    for (int s = 0; full && h0 && h1 && s < 8; s++) {
      CHECK(kd_loader_next(full, &ba, &e) == 0 && kd_loader_next(h0, &b0, &e) == 0 && kd_loader_next(h1, &b1, &e) == 0);
      if (!ba || !b0 || !b1) break;
      CHECK(b0->n == 2 && b1->n == 2 && b0->step == s && b1->step == s);
      size_t img = (size_t)3 * ba->h * ba->w;
      CHECK_MSG(!memcmp(b0->index, ba->index, 2 * sizeof(int)) && !memcmp(b1->index, ba->index + 2, 2 * sizeof(int)),
                "step %d: the shards are not the halves of the batch", s);
      CHECK(!memcmp(b0->images, ba->images, 2 * img * sizeof(float)) &&
            !memcmp(b1->images, ba->images + 2 * img, 2 * img * sizeof(float)));
      CHECK(b1->box_off[2] == ba->box_off[4] - ba->box_off[2] &&
            !memcmp(b1->boxes, ba->boxes + 4 * ba->box_off[2], (size_t)b1->box_off[2] * 4 * sizeof(float)));
    }
    kd_loader_free(full), kd_loader_free(h0), kd_loader_free(h1);
    KdLoaderCfg odd = c;
    odd.shards = 3;
    CHECK(kd_loader_new(ds, &odd, &e) == NULL && contains(e.msg, "shard 0 of 3"));
  }

  /* Every image once per epoch (keep the last batch: 6 batches of 4,4,4,4,4,1). */
  KdLoaderCfg ec = c;
  ec.drop_last = 0;
  KdLoader *l = open_loader(ds, &ec);
  CHECK(kd_loader_batches_per_epoch(l) == 6);
  int first_order[N], k = 0;
  for (int epoch = 0; epoch < 2; epoch++) {
    int seen[N] = {0}, same = 1;
    for (int s = 0; s < 6; s++) {
      CHECK(kd_loader_next(l, &ba, &e) == 0 && ba);
      if (!ba) break;
      for (int i = 0; i < ba->n; i++) {
        seen[ba->index[i]]++;
        if (epoch == 0) first_order[k++] = ba->index[i];
        else same &= first_order[s * 4 + i] == ba->index[i];
      }
    }
    int once = 1;
    for (int i = 0; i < N; i++) once &= seen[i] == 1;
    CHECK_MSG(once, "epoch %d is not a permutation", epoch);
    if (epoch == 1) CHECK_MSG(!same, "epoch 1 repeats epoch 0's order");
  }
  kd_loader_free(l);

  /* Another seed, another order. */
  KdLoaderCfg sc = c;
  sc.seed = 12;
  l = open_loader(ds, &sc);
  CHECK(kd_loader_next(l, &ba, &e) == 0 && ba);
  int differs = 0;
  for (int i = 0; ba && i < 4; i++) differs |= ba->index[i] != first_order[i];
  CHECK(differs);
  kd_loader_free(l);

  /* Evaluation: in order, no flips, partial last batch, then the end. */
  KdLoaderCfg vc;
  kd_loader_cfg_eval(&vc);
  vc.batch_size = 4, vc.image.size = 64, vc.queue_depth = 1;
  l = open_loader(ds, &vc);
  int next = 0, batches = 0;
  for (;;) {
    CHECK(kd_loader_next(l, &ba, &e) == 0);
    if (!ba) break;
    batches++;
    for (int i = 0; i < ba->n; i++) CHECK(ba->index[i] == next++ && !ba->xform[i].flipped);
    check_boxes(ds, ba, &vc.image);
  }
  CHECK(next == N && batches == 6);
  CHECK(kd_loader_next(l, &ba, &e) == 0 && ba == NULL); /* stays at the end */
  KdLoaderStats st = kd_loader_stats(l);
  CHECK(st.batches == 6 && st.prep_s > 0 && st.bad_images == 0);
  kd_loader_free(l);

  /* A sharded pass: rank 1 of 4 takes global batches 1 and 5 (the partial
   * last one), with their own images; a stride in training is refused. */
  KdLoaderCfg pc = vc;
  pc.pass_stride = 4, pc.pass_offset = 1;
  l = open_loader(ds, &pc);
  long steps[3] = {-1, -1, -1};
  batches = 0;
  for (;;) {
    CHECK(kd_loader_next(l, &ba, &e) == 0);
    if (!ba || batches == 3) break;
    steps[batches++] = ba->step;
    for (int i = 0; i < ba->n; i++) CHECK(ba->index[i] == 4 * (int)ba->step + i);
  }
  CHECK_MSG(batches == 2 && steps[0] == 1 && steps[1] == 5 && kd_loader_stats(l).batches == 2, "%d batches: %ld %ld", batches,
            steps[0], steps[1]);
  kd_loader_free(l);
  pc = c, pc.pass_stride = 2;
  CHECK(kd_loader_new(ds, &pc, &e) == NULL && contains(e.msg, "one pass"));

  /* Config errors. */
  KdLoaderCfg big = c;
  big.batch_size = 64;
  CHECK(kd_loader_new(ds, &big, &e) == NULL && contains(e.msg, "21 images make no batch of 64"));
  big = c, big.queue_depth = 0;
  CHECK(kd_loader_new(ds, &big, &e) == NULL && contains(e.msg, "queue_depth"));
  kd_dataset_free(ds);

  /* Bad images: a non-JPEG and a truncated JPEG. */
  make_set(1);
  CHECK(kd_dataset_open_dir(fx_path("set"), "train", &ds, &e) == 0);
  KdLoaderCfg tc = c;
  tc.shuffle = 0, tc.augment = 0;
  l = open_loader(ds, &tc);
  int warned5 = 0, warned6 = 0;
  for (int s = 0; s < 5; s++) {
    CHECK(kd_loader_next(l, &ba, &e) == 0 && ba);
    if (!ba) break;
    CHECK(ba->n == 4); /* training batches stay full */
    for (int i = 0; i < ba->n; i++) CHECK(ba->index[i] != 5 && ba->index[i] != 6);
    warned5 |= contains(ba->warnings, "005.jpg") && contains(ba->warnings, "not a JPEG");
    warned6 |= contains(ba->warnings, "006.jpg") && contains(ba->warnings, "truncated");
  }
  CHECK(warned5 && warned6);
  CHECK_MSG(kd_loader_stats(l).bad_images == 2, "bad %ld", kd_loader_stats(l).bad_images);
  kd_loader_free(l);
  l = open_loader(ds, &vc);
  int total = 0;
  while (kd_loader_next(l, &ba, &e) == 0 && ba) {
    total += ba->n;
    if (ba->step == 1) CHECK_MSG(ba->n == 2 && contains(ba->warnings, "005.jpg") && contains(ba->warnings, "006.jpg"), "n %d: %s", ba->n, ba->warnings);
    /* The left-out images, each with its reason (without the path). */
    CHECK(ba->n_bad == (ba->step == 1 ? 2 : 0));
    if (ba->step == 1 && ba->n_bad == 2) {
      CHECK(ba->bad[0].index == 5 && ba->bad[1].index == 6);
      CHECK_MSG(!strncmp(ba->bad[0].reason, "not a JPEG", 10) && contains(ba->bad[1].reason, "truncated JPEG"), "%s | %s",
                ba->bad[0].reason, ba->bad[1].reason);
      CHECK(!contains(ba->bad[0].reason, "005.jpg") && !contains(ba->bad[1].reason, "006.jpg"));
    }
  }
  CHECK(total == N - 2);
  kd_loader_free(l);
  kd_dataset_free(ds);

  /* A folder of broken files is fatal, with the reason. */
  for (int i = 0; i < N; i++) {
    char name[64];
    snprintf(name, sizeof name, "set/images/train/%03d.jpg", i);
    fx_text(name, "garbage");
  }
  CHECK(kd_dataset_open_dir(fx_path("set"), "train", &ds, &e) == 0);
  l = open_loader(ds, &c);
  CHECK(kd_loader_next(l, &ba, &e) == -1 && ba == NULL);
  CHECK_MSG(contains(e.msg, "in a row failed") && contains(e.msg, "not a JPEG"), "%s", e.msg);
  CHECK(kd_loader_next(l, &ba, &e) == -1); /* and stays failed */
  kd_loader_free(l);
  kd_dataset_free(ds);
  return check_status("test_loader");
}
