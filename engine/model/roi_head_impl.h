/* The RoI head's state, shared by its files (roi_head.c: layers and
 * forward, roi_sample.c: training sample and loss, roi_decode.c:
 * detections). Not for use outside them. */
#ifndef KD_ROI_HEAD_IMPL_H
#define KD_ROI_HEAD_IMPL_H

#include "detect/boxcoder.h"
#include "model/layers.h"
#include "model/roi_head.h"

#define KD_ROI_CONVS 4

struct KdRoiHead {
  KdRoiHeadCfg cfg;
  KdLevels levels;
  int channels;
  int conv4;                  /* 4conv1fc, else TwoMLPHead */
  KdConv conv[KD_ROI_CONVS];  /* 4conv1fc */
  KdGn gn[KD_ROI_CONVS];      /* 4conv1fc with conv_gn */
  KdLinear fc6, fc7;          /* fc6 is 4conv1fc's one fc (box_head.5) */
  KdLinear cls, bbox;         /* box_predictor.cls_score, .bbox_pred */
  KdBoxCoder bc;              /* box_weights */
};

#endif
