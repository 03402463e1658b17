/* The panel kinds, one widget type each (see panel.h for the base). */
#ifndef KDS_PANELS_H
#define KDS_PANELS_H

#include "panel.h"

G_BEGIN_DECLS

#define KDS_TYPE_IMAGE_PANEL (kds_image_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsImagePanel, kds_image_panel, KDS, IMAGE_PANEL, KdsPanel)
#define KDS_TYPE_GAP_PANEL (kds_gap_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsGapPanel, kds_gap_panel, KDS, GAP_PANEL, KdsPanel)
#define KDS_TYPE_MASK_PANEL (kds_mask_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsMaskPanel, kds_mask_panel, KDS, MASK_PANEL, KdsPanel)
#define KDS_TYPE_ATTENTION_PANEL (kds_attention_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsAttentionPanel, kds_attention_panel, KDS, ATTENTION_PANEL, KdsPanel)
#define KDS_TYPE_GRADIENT_PANEL (kds_gradient_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsGradientPanel, kds_gradient_panel, KDS, GRADIENT_PANEL, KdsPanel)
#define KDS_TYPE_PROJECTION_PANEL (kds_projection_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsProjectionPanel, kds_projection_panel, KDS, PROJECTION_PANEL, KdsPanel)
#define KDS_TYPE_CURVES_PANEL (kds_curves_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsCurvesPanel, kds_curves_panel, KDS, CURVES_PANEL, KdsPanel)

G_END_DECLS

#endif
