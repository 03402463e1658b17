/* Contact sheets: a grid of a data set's images with their ground-truth
 * boxes and class names drawn on, written as PNG, so a person can look at
 * the data before training on it. */
#ifndef KD_PREVIEW_H
#define KD_PREVIEW_H

#include "data/dataset.h"

/* n images spread evenly over the data set, cols per row, each scaled to
 * fit a tile x tile square. Images that fail to decode are drawn as a grey
 * tile with the reason. */
int kd_dataset_preview(const KdDataset *ds, const char *png_path, int n, int cols, int tile,
                       KdError *err);

#endif
