/* Every kind of bad COCO input fails with a message that names the file,
 * the json path and what was expected - and nothing crashes. */
#include "check.h"
#include "data/dataset.h"
#include "fixture.h"

#define CATS "\"categories\": [{\"id\": 1, \"name\": \"shirt\"}]"
#define IMG(extra) "\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 64, \"height\": 48" extra "}]"
#define ANN(body) "\"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 1, " body "}]"
#define GOOD_BOX "\"bbox\": [1, 2, 3, 4]"

typedef struct Case {
  const char *json;
  const char *expect[3]; /* substrings that must all appear */
} Case;

static const Case cases[] = {
    {"", {"empty file", "expected COCO json"}},
    {"{\"images\": [ {\"id\": 1,, } ] }", {"line 1, column", "malformed JSON"}},
    {"{\n\"images\": [\n  {\"id\": 1 \"x\": 2}\n]}", {"line 3", "malformed JSON near"}},
    {"{\"images\": [", {"malformed JSON", "truncated"}},
    {"[1, 2]", {"expected a JSON object", "got an array"}},
    {"{" CATS "}", {"images: expected an array", "missing"}},
    {"{" IMG("") "}", {"categories: expected an array", "missing"}},
    {"{" IMG("") ", " CATS ", \"annotations\": 5}", {"annotations: expected an array", "got a number"}},
    {"{" IMG("") ", " CATS ", " ANN("\"bbox\": \"1,2,3,4\"") "}",
     {"annotations[0].bbox: expected an array of 4 numbers", "got a string"}},
    {"{" IMG("") ", " CATS ", " ANN("\"bbox\": [1, 2, 3]") "}",
     {"annotations[0].bbox: expected 4 numbers", "got 3 elements"}},
    {"{" IMG("") ", " CATS ", " ANN("\"bbox\": [1, \"2\", 3, 4]") "}",
     {"annotations[0].bbox[1]: expected a number", "got a string"}},
    {"{" IMG("") ", " CATS ", " ANN("\"bbox\": [1, 2, 1e300, 4]") "}",
     {"annotations[0].bbox[2]: expected a finite number"}},
    {"{" IMG("") ", " CATS ", " ANN("\"bbox\": [1, 2, 3, 4], \"iscrowd\": 2") "}",
     {"annotations[0].iscrowd: expected 0 or 1"}},
    {"{" IMG("") ", " CATS ", " ANN("\"bbox\": [1, 2, 3, 4], \"area\": \"big\"") "}",
     {"annotations[0].area: expected a non-negative number", "got a string"}},
    {"{" IMG("") ", " CATS ", \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 99, " GOOD_BOX "}]}",
     {"annotations[0].category_id: 99 is not the id of any entry in categories"}},
    {"{" IMG("") ", " CATS ", \"annotations\": [{\"id\": 1, \"image_id\": 77, \"category_id\": 1, " GOOD_BOX "}]}",
     {"annotations[0].image_id: 77 is not the id of any entry in images"}},
    {"{" IMG("") ", " CATS ", \"annotations\": [{\"id\": 1, \"category_id\": 1, " GOOD_BOX "}]}",
     {"annotations[0].image_id: expected an integer", "missing"}},
    {"{" IMG("") ", " CATS ", \"annotations\": [[1, 2]]}", {"annotations[0]: expected an object", "got an array"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 8, \"height\": 8},"
     " {\"id\": 2, \"file_name\": \"b.jpg\", \"width\": 8, \"height\": 8},"
     " {\"id\": 1, \"file_name\": \"c.jpg\", \"width\": 8, \"height\": 8}], " CATS "}",
     {"images[2].id: 1 is already used by images[0]", "expected unique ids"}},
    {"{" IMG("") ", \"categories\": [{\"id\": 4, \"name\": \"a\"}, {\"id\": 4, \"name\": \"b\"}]}",
     {"categories[1].id: 4 is already used by categories[0]"}},
    {"{" IMG("") ", \"categories\": [{\"id\": 4}]}", {"categories[0].name: expected a string", "missing"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 0, \"height\": 48}], " CATS "}",
     {"images[0].width: expected an integer in 1..16384", "got 0"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 64, \"height\": 100000}], " CATS "}",
     {"images[0].height: expected an integer in 1..16384", "got 100000"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": \"64\", \"height\": 48}], " CATS "}",
     {"images[0].width: expected an integer", "got a string"}},
    {"{\"images\": [{\"id\": 1.5, \"file_name\": \"a.jpg\", \"width\": 64, \"height\": 48}], " CATS "}",
     {"images[0].id: expected an integer in", "got 1.5"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"caf\xe9.jpg\", \"width\": 64, \"height\": 48}], " CATS "}",
     {"images[0].file_name: expected UTF-8 text", "byte 0xe9 at offset 3", "caf\\xe9.jpg"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"\xc0\xaf.jpg\", \"width\": 64, \"height\": 48}], " CATS "}",
     {"images[0].file_name: expected UTF-8 text", "byte 0xc0"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"../etc/x.jpg\", \"width\": 64, \"height\": 48}], " CATS "}",
     {"images[0].file_name: expected a path inside the image folder"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"/etc/x.jpg\", \"width\": 64, \"height\": 48}], " CATS "}",
     {"images[0].file_name: expected a path relative to the image folder"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": \"\", \"width\": 64, \"height\": 48}], " CATS "}",
     {"images[0].file_name: expected a file name"}},
    {"{\"images\": [{\"id\": 1, \"file_name\": 7, \"width\": 64, \"height\": 48}], " CATS "}",
     {"images[0].file_name: expected a string", "got a number"}},
    {"{\"images\": [null], " CATS "}", {"images[0]: expected an object", "got null"}},
};

int main(void) {
  int n = (int)(sizeof cases / sizeof cases[0]);
  for (int i = 0; i < n; i++) {
    KdError e = {{0}};
    KdDataset *ds = (KdDataset *)&e; /* must be reset to NULL on failure */
    int rc = kd_dataset_parse(cases[i].json, strlen(cases[i].json), "bad.json", NULL, &ds, &e);
    CHECK_MSG(rc == -1 && ds == NULL, "case %d was accepted", i);
    if (rc == 0 && ds) kd_dataset_free(ds);
    CHECK_MSG(!strncmp(e.msg, "bad.json: ", 10), "case %d: message does not name the file: %s", i, e.msg);
    for (int k = 0; k < 3 && cases[i].expect[k]; k++)
      CHECK_MSG(contains(e.msg, cases[i].expect[k]), "case %d: '%s' not in: %s", i, cases[i].expect[k], e.msg);
  }

  /* Files on disk: a missing json, a missing image folder, missing images. */
  fx_tmpdir("cocobad");
  KdError e;
  KdDataset *ds = NULL;
  CHECK(kd_dataset_open(fx_path("none.json"), NULL, &ds, &e) == -1 && ds == NULL);
  CHECK_MSG(contains(e.msg, "none.json") && contains(e.msg, "cannot open"), "%s", e.msg);
  const char *two = "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 8, \"height\": 8},"
                    " {\"id\": 2, \"file_name\": \"b.jpg\", \"width\": 8, \"height\": 8},"
                    " {\"id\": 3, \"file_name\": \"c.jpg\", \"width\": 8, \"height\": 8}], " CATS "}";
  fx_text("two.json", two);
  fx_mkdir("imgs");
  CHECK(kd_dataset_open(fx_path("two.json"), fx_path("nodir"), &ds, &e) == -1);
  CHECK_MSG(contains(e.msg, "two.json") && contains(e.msg, "nodir") && contains(e.msg, "does not exist"), "%s", e.msg);
  static const uint8_t grey[3] = {100, 100, 100};
  fx_jpeg("imgs/a.jpg", 8, 8, grey, 0, 0, 0, 0, grey);
  CHECK(kd_dataset_open(fx_path("two.json"), fx_path("imgs"), &ds, &e) == -1 && ds == NULL);
  CHECK_MSG(contains(e.msg, "two.json: ") && contains(e.msg, "2 image files are missing") &&
                contains(e.msg, "images[1].file_name") && contains(e.msg, "\"b.jpg\"") && contains(e.msg, "does not exist"),
            "%s", e.msg);
  fx_jpeg("imgs/b.jpg", 8, 8, grey, 0, 0, 0, 0, grey);
  fx_mkdir("imgs/c.jpg"); /* a directory where a file should be */
  CHECK(kd_dataset_open(fx_path("two.json"), fx_path("imgs"), &ds, &e) == -1);
  CHECK_MSG(contains(e.msg, "images[2].file_name") && contains(e.msg, "not a readable file"), "%s", e.msg);
  /* Opened for evaluation, missing files are counted, not an error,
   * unless none exists. */
  fx_mkdir("ev/annotations");
  fx_mkdir("ev/images/val");
  fx_text("ev/annotations/instances_val.json", two);
  CHECK(kd_dataset_open_eval(fx_path("ev"), "val", &ds, &e) == -1 && ds == NULL);
  CHECK_MSG(contains(e.msg, "all 3 image files are missing") && contains(e.msg, "\"a.jpg\""), "%s", e.msg);
  fx_jpeg("ev/images/val/b.jpg", 8, 8, grey, 0, 0, 0, 0, grey);
  CHECK(kd_dataset_open_dir(fx_path("ev"), "val", &ds, &e) == -1 && contains(e.msg, "2 image files are missing"));
  CHECK_MSG(kd_dataset_open_eval(fx_path("ev"), "val", &ds, &e) == 0, "%s", e.msg);
  CHECK(ds && kd_dataset_stats(ds).missing_files == 2 && kd_dataset_num_images(ds) == 3);
  CHECK_MSG(ds && contains(kd_dataset_summary(ds), "in 1 classes, 2 image files missing;"), "%s",
            ds ? kd_dataset_summary(ds) : "");
  kd_dataset_free(ds);
  /* Non-UTF-8 bytes in a file name on disk are reported escaped, not raw. */
  fx_text("bin.json", "{\"images\": [{\"id\": 1, \"file_name\": \"\xff\xfe\", \"width\": 8, \"height\": 8}], " CATS "}");
  CHECK(kd_dataset_open(fx_path("bin.json"), fx_path("imgs"), &ds, &e) == -1);
  CHECK_MSG(contains(e.msg, "\\xff\\xfe") && !contains(e.msg, "\xff"), "%s", e.msg);
  return check_status("test_coco_bad");
}
