#!/usr/bin/python3
"""COCOeval for bounding boxes, restated in numpy from pycocotools'
definition (COCOeval.evaluate / evaluateImg / accumulate / summarize and
maskApi.c bbIou), kept in pycocotools' own structure (dicts of annotations
per (image, category), evalImgs list, the T x R x K x A x M precision
array) so that it is an independent check of engine/detect/cocoeval.c.

Usage: coco_oracle.py eval IN OUT, with the named-array files of
tests/detect/oracle.h. Input: img [I] image ids, ncat [1], gt [8 per GT:
image_id, category, x, y, w, h, area, iscrowd], dt [7 per detection:
image_id, category, x, y, w, h, score]. Output: stats [12], cat_ap [K].
Exits 77 when numpy is missing.
"""
import sys
from collections import defaultdict


def read_arrays(path):
    arrs = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                arrs[parts[0]] = [float(v) for v in parts[2:2 + int(parts[1])]]
    return arrs


def write_arrays(path, arrs):
    with open(path, "w") as f:
        for name, vals in arrs.items():
            f.write("%s %d %s\n" % (name, len(vals), " ".join(repr(float(v)) for v in vals)))


def bb_iou(dts, gts, iscrowd):
    """maskApi.c bbIou: o[d][g]; crowd GTs use the detection's area as union."""
    out = []
    for d in dts:
        row = []
        for g, crowd in zip(gts, iscrowd):
            o = 0.0
            w = min(d[2] + d[0], g[2] + g[0]) - max(d[0], g[0])
            if w > 0:
                h = min(d[3] + d[1], g[3] + g[1]) - max(d[1], g[1])
                if h > 0:
                    i = w * h
                    da = d[2] * d[3]
                    ga = g[2] * g[3]
                    u = da if crowd else da + ga - i
                    o = i / u
            row.append(o)
        out.append(row)
    return out


class COCOevalBBox:
    def __init__(self, np, img_ids, cat_ids, gts, dts):
        self.np = np
        self.imgIds = sorted(img_ids)
        self.catIds = sorted(cat_ids)
        self.iouThrs = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
        self.recThrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
        self.maxDets = [1, 10, 100]
        self.areaRng = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
        self.areaRngLbl = ['all', 'small', 'medium', 'large']
        # _prepare(): annotations grouped per image (sorted ids), dataset order inside
        by_img_gt, by_img_dt = defaultdict(list), defaultdict(list)
        for g in gts:
            by_img_gt[g['image_id']].append(g)
        for d in dts:
            by_img_dt[d['image_id']].append(d)
        self._gts, self._dts = defaultdict(list), defaultdict(list)
        for img in self.imgIds:
            for g in by_img_gt[img]:
                g['ignore'] = g['iscrowd']
                self._gts[img, g['category_id']].append(g)
            for d in by_img_dt[img]:
                self._dts[img, d['category_id']].append(d)

    def computeIoU(self, imgId, catId):
        gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
        if len(gt) == 0 and len(dt) == 0:
            return []
        inds = self.np.argsort([-d['score'] for d in dt], kind='mergesort')
        dt = [dt[i] for i in inds]
        if len(dt) > self.maxDets[-1]:
            dt = dt[0:self.maxDets[-1]]
        if len(dt) == 0 or len(gt) == 0:
            return []
        return self.np.array(bb_iou([d['bbox'] for d in dt], [g['bbox'] for g in gt],
                                    [int(o['iscrowd']) for o in gt]))

    def evaluateImg(self, imgId, catId, aRng, maxDet):
        np = self.np
        gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
        if len(gt) == 0 and len(dt) == 0:
            return None
        for g in gt:
            g['_ignore'] = 1 if (g['ignore'] or (g['area'] < aRng[0] or g['area'] > aRng[1])) else 0
        gtind = np.argsort([g['_ignore'] for g in gt], kind='mergesort')
        gt = [gt[i] for i in gtind]
        dtind = np.argsort([-d['score'] for d in dt], kind='mergesort')
        dt = [dt[i] for i in dtind[0:maxDet]]
        iscrowd = [int(o['iscrowd']) for o in gt]
        ious = self.ious[imgId, catId]
        ious = ious[:, gtind] if len(ious) > 0 else ious
        T, G, D = len(self.iouThrs), len(gt), len(dt)
        gtm, dtm = np.zeros((T, G)), np.zeros((T, D))
        gtIg = np.array([g['_ignore'] for g in gt])
        dtIg = np.zeros((T, D))
        if not len(ious) == 0:
            for tind, t in enumerate(self.iouThrs):
                for dind, d in enumerate(dt):
                    iou = min([t, 1 - 1e-10])
                    m = -1
                    for gind, g in enumerate(gt):
                        if gtm[tind, gind] > 0 and not iscrowd[gind]:
                            continue
                        if m > -1 and gtIg[m] == 0 and gtIg[gind] == 1:
                            break
                        if ious[dind, gind] < iou:
                            continue
                        iou = ious[dind, gind]
                        m = gind
                    if m == -1:
                        continue
                    dtIg[tind, dind] = gtIg[m]
                    dtm[tind, dind] = gt[m]['id']
                    gtm[tind, m] = d['id']
        a = np.array([d['area'] < aRng[0] or d['area'] > aRng[1] for d in dt]).reshape((1, len(dt)))
        dtIg = np.logical_or(dtIg, np.logical_and(dtm == 0, np.repeat(a, T, 0)))
        return {'dtMatches': dtm, 'gtMatches': gtm, 'dtScores': [d['score'] for d in dt],
                'gtIgnore': gtIg, 'dtIgnore': dtIg}

    def evaluate(self):
        self.ious = {(i, c): self.computeIoU(i, c) for i in self.imgIds for c in self.catIds}
        maxDet = self.maxDets[-1]
        self.evalImgs = [self.evaluateImg(i, c, a, maxDet)
                         for c in self.catIds for a in self.areaRng for i in self.imgIds]

    def accumulate(self):
        np = self.np
        T, R, K = len(self.iouThrs), len(self.recThrs), len(self.catIds)
        A, M = len(self.areaRng), len(self.maxDets)
        precision = -np.ones((T, R, K, A, M))
        recall = -np.ones((T, K, A, M))
        I0, A0 = len(self.imgIds), len(self.areaRng)
        for k in range(K):
            Nk = k * A0 * I0
            for a in range(A):
                Na = a * I0
                for m, maxDet in enumerate(self.maxDets):
                    E = [self.evalImgs[Nk + Na + i] for i in range(I0)]
                    E = [e for e in E if e is not None]
                    if len(E) == 0:
                        continue
                    dtScores = np.concatenate([e['dtScores'][0:maxDet] for e in E])
                    inds = np.argsort(-dtScores, kind='mergesort')
                    dtm = np.concatenate([e['dtMatches'][:, 0:maxDet] for e in E], axis=1)[:, inds]
                    dtIg = np.concatenate([e['dtIgnore'][:, 0:maxDet] for e in E], axis=1)[:, inds]
                    gtIg = np.concatenate([e['gtIgnore'] for e in E])
                    npig = np.count_nonzero(gtIg == 0)
                    if npig == 0:
                        continue
                    tps = np.logical_and(dtm, np.logical_not(dtIg))
                    fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtIg))
                    tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
                    fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
                    for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
                        tp, fp = np.array(tp), np.array(fp)
                        nd = len(tp)
                        rc = tp / npig
                        pr = tp / (fp + tp + np.spacing(1))
                        q = np.zeros((R,))
                        recall[t, k, a, m] = rc[-1] if nd else 0
                        pr, q = pr.tolist(), q.tolist()
                        for i in range(nd - 1, 0, -1):
                            if pr[i] > pr[i - 1]:
                                pr[i - 1] = pr[i]
                        inds = np.searchsorted(rc, self.recThrs, side='left')
                        try:
                            for ri, pi in enumerate(inds):
                                q[ri] = pr[pi]
                        except IndexError:
                            pass
                        precision[t, :, k, a, m] = np.array(q)
        self.precision, self.recall = precision, recall

    def summarize(self):
        np = self.np

        def _summarize(ap=1, iouThr=None, areaRng='all', maxDets=100):
            aind = [i for i, aRng in enumerate(self.areaRngLbl) if aRng == areaRng]
            mind = [i for i, mDet in enumerate(self.maxDets) if mDet == maxDets]
            if ap == 1:
                s = self.precision
                if iouThr is not None:
                    s = s[np.where(iouThr == self.iouThrs)[0]]
                s = s[:, :, :, aind, mind]
            else:
                s = self.recall
                if iouThr is not None:
                    s = s[np.where(iouThr == self.iouThrs)[0]]
                s = s[:, :, aind, mind]
            return -1 if len(s[s > -1]) == 0 else np.mean(s[s > -1])

        md = self.maxDets
        return [_summarize(1), _summarize(1, iouThr=.5, maxDets=md[2]), _summarize(1, iouThr=.75, maxDets=md[2]),
                _summarize(1, areaRng='small', maxDets=md[2]), _summarize(1, areaRng='medium', maxDets=md[2]),
                _summarize(1, areaRng='large', maxDets=md[2]), _summarize(0, maxDets=md[0]),
                _summarize(0, maxDets=md[1]), _summarize(0, maxDets=md[2]),
                _summarize(0, areaRng='small', maxDets=md[2]), _summarize(0, areaRng='medium', maxDets=md[2]),
                _summarize(0, areaRng='large', maxDets=md[2])]

    def category_ap(self):
        out = []
        for k in range(len(self.catIds)):
            s = self.precision[:, :, k, 0, 2]
            out.append(-1 if len(s[s > -1]) == 0 else self.np.mean(s[s > -1]))
        return out


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "eval":
        print(__doc__)
        return 2
    try:
        import numpy as np
    except ImportError as e:
        print("coco_oracle: skipped, %s" % e)
        return 77
    arrs = read_arrays(sys.argv[2])
    imgs = [int(v) for v in arrs["img"]]
    ncat = int(arrs["ncat"][0])
    g, d = arrs.get("gt", []), arrs.get("dt", [])
    gts = [{'id': j + 1, 'image_id': int(g[8 * j]), 'category_id': int(g[8 * j + 1]), 'bbox': g[8 * j + 2:8 * j + 6],
            'area': g[8 * j + 6], 'iscrowd': int(g[8 * j + 7])} for j in range(len(g) // 8)]
    # loadRes(): ids from 1, area = w*h, iscrowd 0
    dts = [{'id': j + 1, 'image_id': int(d[7 * j]), 'category_id': int(d[7 * j + 1]), 'bbox': d[7 * j + 2:7 * j + 6],
            'area': d[7 * j + 4] * d[7 * j + 5], 'iscrowd': 0, 'score': d[7 * j + 6]} for j in range(len(d) // 7)]
    ev = COCOevalBBox(np, imgs, list(range(ncat)), gts, dts)
    ev.evaluate()
    ev.accumulate()
    write_arrays(sys.argv[3], {"stats": ev.summarize(), "cat_ap": ev.category_ap()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
