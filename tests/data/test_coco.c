/* COCO loader on a small fixture written here: contiguous class indices in
 * COCO-id order and back, images without boxes kept, crowd boxes flagged,
 * clipping and dropping counted, the summary line, the directory layout. */
#include "check.h"
#include "data/dataset.h"
#include "fixture.h"

static const char *fixture =
    "{\"info\": {\"x\": 1},\n"
    " \"categories\": [{\"id\": 7, \"name\": \"cat\"}, {\"id\": 3, \"name\": \"dog\"},\n"
    "                {\"id\": 12, \"name\": \"bird\", \"supercategory\": \"animal\"}],\n"
    " \"images\": [{\"id\": 10, \"file_name\": \"a.jpg\", \"width\": 100, \"height\": 80},\n"
    "            {\"id\": 5, \"file_name\": \"sub/caf\\u00e9.jpg\", \"width\": 64, \"height\": 64},\n"
    "            {\"id\": 42, \"file_name\": \"b.jpg\", \"width\": 50, \"height\": 50}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 1, \"image_id\": 10, \"category_id\": 7, \"bbox\": [10, 20, 30, 40], \"area\": 900, \"iscrowd\": 0},\n"
    "  {\"id\": 2, \"image_id\": 10, \"category_id\": 3, \"bbox\": [90, 70, 20, 20]},\n"
    "  {\"id\": 3, \"image_id\": 42, \"category_id\": 12, \"bbox\": [0, 0, 50, 50], \"iscrowd\": 1},\n"
    "  {\"id\": 4, \"image_id\": 42, \"category_id\": 3, \"bbox\": [5, 5, 0, 10]},\n"
    "  {\"id\": 5, \"image_id\": 42, \"category_id\": 3, \"bbox\": [60, 60, 10, 10]},\n"
    "  {\"id\": 6, \"image_id\": 10, \"category_id\": 12, \"bbox\": [-5, -5, 10, 10.5]},\n"
    "  {\"id\": 7, \"image_id\": 10, \"category_id\": 3, \"bbox\": [1, 1, -3, 4]}\n"
    " ]}\n";

static void check_fixture(const KdDataset *ds) {
  CHECK(kd_dataset_num_images(ds) == 3);
  CHECK(kd_dataset_num_classes(ds) == 3);
  /* Contiguous order = ascending COCO id: 3 dog, 7 cat, 12 bird. */
  CHECK(kd_dataset_class_coco_id(ds, 0) == 3 && kd_dataset_class_coco_id(ds, 1) == 7 &&
        kd_dataset_class_coco_id(ds, 2) == 12);
  CHECK(!strcmp(kd_dataset_class_name(ds, 0), "dog") && !strcmp(kd_dataset_class_name(ds, 1), "cat") &&
        !strcmp(kd_dataset_class_name(ds, 2), "bird"));
  CHECK(kd_dataset_class_index(ds, 7) == 1 && kd_dataset_class_index(ds, 12) == 2);
  CHECK(kd_dataset_class_index(ds, 99) == -1 && kd_dataset_class_name(ds, 3) == NULL);
  CHECK(kd_dataset_image_index(ds, 42) == 2 && kd_dataset_image_index(ds, 5) == 1 &&
        kd_dataset_image_index(ds, 11) == -1);

  KdDatasetImage a = kd_dataset_image(ds, 0);
  CHECK(a.id == 10 && !strcmp(a.file_name, "a.jpg") && a.width == 100 && a.height == 80);
  CHECK(a.n_boxes == 3);
  if (a.n_boxes == 3) { /* annotation order kept */
    CHECK(a.labels[0] == 1 && a.labels[1] == 0 && a.labels[2] == 2);
    CHECK_NEAR(a.boxes[0], 10, 0); CHECK_NEAR(a.boxes[1], 20, 0);
    CHECK_NEAR(a.boxes[2], 40, 0); CHECK_NEAR(a.boxes[3], 60, 0);
    CHECK_NEAR(a.areas[0], 900, 0);
    /* [90,70,20,20] clipped to the 100x80 image */
    CHECK_NEAR(a.boxes[4], 90, 0); CHECK_NEAR(a.boxes[5], 70, 0);
    CHECK_NEAR(a.boxes[6], 100, 0); CHECK_NEAR(a.boxes[7], 80, 0);
    CHECK_NEAR(a.areas[1], 100, 1e-4); /* no area given: clipped w*h */
    /* [-5,-5,10,10.5] clipped at the top-left */
    CHECK_NEAR(a.boxes[8], 0, 0); CHECK_NEAR(a.boxes[9], 0, 0);
    CHECK_NEAR(a.boxes[10], 5, 0); CHECK_NEAR(a.boxes[11], 5.5, 1e-6);
    CHECK(!a.crowd[0] && !a.crowd[1] && !a.crowd[2]);
  }
  KdDatasetImage b = kd_dataset_image(ds, 1);
  CHECK(b.id == 5 && b.n_boxes == 0 && !strcmp(b.file_name, "sub/caf\xc3\xa9.jpg"));
  KdDatasetImage c = kd_dataset_image(ds, 2);
  CHECK(c.id == 42 && c.n_boxes == 1);
  if (c.n_boxes == 1) CHECK(c.crowd[0] == 1 && c.labels[0] == 2);
  CHECK(kd_dataset_image(ds, 3).file_name == NULL && kd_dataset_image(ds, -1).n_boxes == 0);

  KdDatasetStats s = kd_dataset_stats(ds);
  CHECK(s.images == 3 && s.images_without_boxes == 1 && s.boxes == 4 && s.crowd_boxes == 1);
  CHECK_MSG(s.clipped == 2 && s.dropped == 3, "clipped %ld dropped %ld", s.clipped, s.dropped);
  const char *sum = kd_dataset_summary(ds);
  CHECK_MSG(contains(sum, "3 images (1 without boxes), 4 boxes (1 crowd) in 3 classes") &&
                contains(sum, "2 boxes clipped") && contains(sum, "3 empty boxes dropped"),
            "%s", sum);
  CHECK(strchr(sum, '\n') == NULL);
}

int main(void) {
  fx_tmpdir("coco");
  KdError e;
  KdDataset *ds = NULL;

  /* In memory, no image folder: files are not checked, paths unavailable. */
  CHECK_MSG(kd_dataset_parse(fixture, strlen(fixture), "mem.json", NULL, &ds, &e) == 0, "%s", e.msg);
  if (ds) {
    check_fixture(ds);
    char p[256];
    CHECK(kd_dataset_image_path(ds, 0, p, sizeof p) == -1 && kd_dataset_image_dir(ds) == NULL);
    CHECK(contains(kd_dataset_summary(ds), "mem.json: "));
    kd_dataset_free(ds);
  }

  /* The kdscope layout on disk, with the image files present. */
  static const uint8_t grey[3] = {128, 128, 128};
  fx_mkdir("set/annotations");
  fx_mkdir("set/images/val/sub");
  fx_text("set/annotations/instances_val.json", fixture);
  fx_jpeg("set/images/val/a.jpg", 100, 80, grey, 0, 0, 0, 0, grey);
  fx_jpeg("set/images/val/b.jpg", 50, 50, grey, 0, 0, 0, 0, grey);
  fx_jpeg("set/images/val/sub/caf\xc3\xa9.jpg", 64, 64, grey, 0, 0, 0, 0, grey);
  ds = NULL;
  CHECK_MSG(kd_dataset_open_dir(fx_path("set"), "val", &ds, &e) == 0, "%s", e.msg);
  if (ds) {
    check_fixture(ds);
    char p[1024];
    CHECK(kd_dataset_image_path(ds, 1, p, sizeof p) == 0 && contains(p, "/set/images/val/sub/caf\xc3\xa9.jpg"));
    CHECK(contains(kd_dataset_summary(ds), "instances_val.json: "));
    CHECK(contains(kd_dataset_json_path(ds), "annotations/instances_val.json"));
    kd_dataset_free(ds);
  }

  /* No annotations key at all (a test-set file): images kept, no boxes. */
  const char *noann = "{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\", \"width\": 8, \"height\": 8}],"
                      " \"categories\": []}";
  ds = NULL;
  CHECK(kd_dataset_parse(noann, strlen(noann), "t.json", NULL, &ds, &e) == 0);
  if (ds) {
    CHECK(kd_dataset_num_images(ds) == 1 && kd_dataset_num_classes(ds) == 0);
    CHECK(kd_dataset_stats(ds).boxes == 0 && contains(kd_dataset_summary(ds), "nothing to fix"));
    kd_dataset_free(ds);
  }
  return check_status("test_coco");
}
