/* fashion-det builder: byte-identical output for a seed whatever the
 * thread count, a different seed differs, the COCO files load cleanly,
 * boxes are tight around the visible pixels, no item is more than half
 * hidden, item sizes are in range, and builds are atomic. Skips when
 * Debian's dataset-fashion-mnist is not installed. */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "data/dataset.h"
#include "data/fashion.h"
#include "fixture.h"

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

static uint64_t hash_file(uint64_t h, const char *path) {
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  KdError e;
  if (kd_read_file(path, 1 << 24, &buf, &cap, &len, &e)) return h ^ 0xdead;
  h = fnv(h, buf, len);
  free(buf);
  return h;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Hash of every file of a built set, in name order. */
static uint64_t hash_set(const char *dir, int *n_files) {
  static const char *subs[] = {"images/train", "images/val"};
  char p[1024];
  uint64_t h = 0xcbf29ce484222325ULL;
  snprintf(p, sizeof p, "%s/fashion-det.json", dir), h = hash_file(h, p);
  snprintf(p, sizeof p, "%s/annotations/instances_train.json", dir), h = hash_file(h, p);
  snprintf(p, sizeof p, "%s/annotations/instances_val.json", dir), h = hash_file(h, p);
  *n_files = 3;
  for (int s = 0; s < 2; s++) {
    snprintf(p, sizeof p, "%s/%s", dir, subs[s]);
    DIR *d = opendir(p);
    if (!d) return 0;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
      if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
      char f[1200];
      snprintf(f, sizeof f, "%s/%s/%s", dir, subs[s], names[i]);
      h = fnv(h, (const uint8_t *)names[i], strlen(names[i]));
      h = hash_file(h, f);
      free(names[i]);
    }
    *n_files += n;
  }
  return h;
}

static void check_render(const KdFashionMnist *src) {
  KdFashionRender *r = kd_fashion_render_new(128);
  uint8_t *rgb = malloc(128 * 128 * 3);
  int8_t *mask = malloc(128 * 128);
  KdFashionScene sc;
  int classes[10] = {0}, counts[7] = {0}, small = 0, large = 0, overlapped = 0;
  for (int i = 0; i < 300; i++) {
    CHECK(kd_fashion_render(r, src, 1, 0, i, rgb, mask, &sc) == 0);
    CHECK(sc.n_items >= 1 && sc.n_items <= 6);
    counts[sc.n_items]++;
    for (int j = 0; j < sc.n_items; j++) {
      const KdFashionItem *it = &sc.items[j];
      classes[it->label]++;
      int ew = it->extent[2] - it->extent[0], eh = it->extent[3] - it->extent[1], lng = ew > eh ? ew : eh;
      CHECK_MSG(lng >= 12 && lng <= 80, "image %d item %d long side %d", i, j, lng);
      small += lng < 24, large += lng > 60;
      CHECK_MSG(2 * it->visible >= it->pixels, "image %d item %d: %d of %d visible", i, j, it->visible, it->pixels);
      overlapped += it->visible < it->pixels;
      /* Tight: the box is the bounding box of the item's visible mask. */
      int b0 = 128, b1 = 128, b2 = 0, b3 = 0, n = 0;
      for (int y = 0; y < 128; y++)
        for (int x = 0; x < 128; x++)
          if (mask[y * 128 + x] == j) {
            n++;
            b0 = x < b0 ? x : b0, b1 = y < b1 ? y : b1, b2 = x + 1 > b2 ? x + 1 : b2, b3 = y + 1 > b3 ? y + 1 : b3;
            CHECK(x >= it->extent[0] && x < it->extent[2] && y >= it->extent[1] && y < it->extent[3]);
          }
      CHECK(n == it->visible);
      CHECK_MSG(b0 == it->box[0] && b1 == it->box[1] && b2 == it->box[2] && b3 == it->box[3],
                "image %d item %d: box %d,%d,%d,%d vs mask %d,%d,%d,%d", i, j, it->box[0], it->box[1], it->box[2],
                it->box[3], b0, b1, b2, b3);
    }
    /* Clutter: the background is not flat. */
    double m = 0, v = 0;
    for (int k = 0; k < 128 * 128; k++) m += rgb[3 * k];
    m /= 128 * 128;
    for (int k = 0; k < 128 * 128; k++) v += (rgb[3 * k] - m) * (rgb[3 * k] - m);
    CHECK(v / (128 * 128) > 20);
  }
  for (int c = 0; c < 10; c++) CHECK_MSG(classes[c] > 20, "class %d appears %d times", c, classes[c]);
  for (int n = 1; n <= 6; n++) CHECK_MSG(counts[n] > 10, "%d images with %d items", counts[n], n);
  CHECK(small > 50 && large > 20 && overlapped > 20);
  /* Same (seed, split, index) => same pixels; another index differs. */
  uint8_t *again = malloc(128 * 128 * 3);
  kd_fashion_render(r, src, 1, 0, 17, rgb, NULL, &sc);
  kd_fashion_render(r, src, 1, 0, 18, again, NULL, &sc);
  CHECK(memcmp(rgb, again, 128 * 128 * 3) != 0);
  kd_fashion_render(r, src, 1, 0, 17, again, NULL, &sc);
  CHECK(memcmp(rgb, again, 128 * 128 * 3) == 0);
  free(again), free(rgb), free(mask);
  kd_fashion_render_free(r);
}

int main(void) {
  KdError e;
  KdFashionMnist src;
  if (kd_fashion_mnist_load(NULL, "t10k", &src, &e)) {
    printf("skip: %s\n", e.msg);
    return 77;
  }
  CHECK(src.n == 10000);
  check_render(&src);
  kd_fashion_mnist_free(&src);

  fx_tmpdir("builder");
  KdFashionCfg c;
  kd_fashion_cfg_default(&c);
  c.n_train = 40, c.n_val = 12, c.seed = 5, c.threads = 1;
  CHECK_MSG(kd_fashion_build(fx_path("a"), &c, 0, NULL, NULL, &e) == 0, "%s", e.msg);
  c.threads = 2;
  CHECK(kd_fashion_build(fx_path("b"), &c, 0, NULL, NULL, &e) == 0);
  c.seed = 6;
  CHECK(kd_fashion_build(fx_path("c"), &c, 0, NULL, NULL, &e) == 0);
  int na, nb, nc;
  uint64_t ha = hash_set(fx_path("a"), &na), hb = hash_set(fx_path("b"), &nb), hc = hash_set(fx_path("c"), &nc);
  CHECK(na == 55 && nb == 55 && nc == 55);
  CHECK_MSG(ha == hb, "1 and 2 threads differ: %016llx vs %016llx", (unsigned long long)ha, (unsigned long long)hb);
  CHECK(ha != hc);
  printf("fashion-det seed 5 (40+12): hash %016llx\n", (unsigned long long)ha);

  /* The COCO files load without anything to fix. */
  for (int s = 0; s < 2; s++) {
    KdDataset *ds = NULL;
    CHECK_MSG(kd_dataset_open_dir(fx_path("a"), s ? "val" : "train", &ds, &e) == 0, "%s", e.msg);
    if (!ds) continue;
    CHECK(kd_dataset_num_images(ds) == (s ? 12 : 40) && kd_dataset_num_classes(ds) == 10);
    CHECK(!strcmp(kd_dataset_class_name(ds, 0), "T-shirt/top") && !strcmp(kd_dataset_class_name(ds, 9), "Ankle boot"));
    CHECK(kd_dataset_class_coco_id(ds, 0) == 1 && kd_dataset_class_coco_id(ds, 9) == 10);
    KdDatasetStats st = kd_dataset_stats(ds);
    CHECK(st.clipped == 0 && st.dropped == 0 && st.images_without_boxes == 0 && st.crowd_boxes == 0);
    CHECK(st.boxes >= kd_dataset_num_images(ds) && st.boxes <= 6 * kd_dataset_num_images(ds));
    KdDatasetImage im = kd_dataset_image(ds, 3);
    CHECK(im.id == 4 && !strcmp(im.file_name, "000004.jpg") && im.width == 128 && im.height == 128);
    kd_dataset_free(ds);
  }

  /* Atomic and careful with what is already there. */
  CHECK(kd_fashion_is_complete(fx_path("a")) && !kd_fashion_is_complete(fx_path("zzz")));
  CHECK(kd_fashion_build(fx_path("a"), &c, 0, NULL, NULL, &e) == -1 && contains(e.msg, "--force"));
  CHECK(kd_fashion_build(fx_path("a"), &c, 1, NULL, NULL, &e) == 0);
  CHECK(hash_set(fx_path("a"), &na) == hc); /* replaced by the seed-6 set */
  fx_mkdir("other");
  fx_text("other/notes.txt", "mine");
  CHECK(kd_fashion_build(fx_path("other"), &c, 1, NULL, NULL, &e) == -1 && contains(e.msg, "not empty"));
  CHECK(kd_path_exists(fx_path("other/notes.txt")));
  fx_mkdir("empty");
  CHECK(kd_fashion_build(fx_path("empty"), &c, 0, NULL, NULL, &e) == 0 && kd_fashion_is_complete(fx_path("empty")));
  /* A failing build leaves neither the set nor its temp directory. */
  c.source_dir = fx_path("no-mnist");
  CHECK(kd_fashion_build(fx_path("d"), &c, 0, NULL, NULL, &e) == -1 && contains(e.msg, "no-mnist"));
  CHECK(!kd_path_exists(fx_path("d")));
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", fx_path("d"), (long)getpid());
  CHECK(!kd_path_exists(tmp));
  c.source_dir = NULL, c.size = 8;
  CHECK(kd_fashion_build(fx_path("d"), &c, 0, NULL, NULL, &e) == -1 && contains(e.msg, "--size"));

  /* The default location follows XDG. */
  char dir[1024];
  setenv("XDG_DATA_HOME", "/x/data", 1);
  CHECK(kd_default_data_dir(dir, sizeof dir) == 0 && !strcmp(dir, "/x/data/kdscope/fashion-det"));
  unsetenv("XDG_DATA_HOME");
  setenv("HOME", "/home/u", 1);
  CHECK(kd_default_data_dir(dir, sizeof dir) == 0 && !strcmp(dir, "/home/u/.local/share/kdscope/fashion-det"));
  CHECK(kd_default_data_dir(dir, 8) == -1);
  /* An existing complete set is used as is, without building. */
  setenv("XDG_DATA_HOME", fx_path("xdg"), 1);
  fx_mkdir("xdg/kdscope/fashion-det");
  fx_text("xdg/kdscope/fashion-det/fashion-det.json", "{}");
  CHECK(kd_ensure_default_dataset(dir, sizeof dir, NULL, NULL, &e) == 0 && contains(dir, "/xdg/kdscope/fashion-det"));
  return check_status("test_builder");
}
