/**
 * The in-batch label loss: every image of a batch against every other, per condition.
 *
 * Sampled triplets teach one comparison each; a batch of n labelled images holds n² of them per condition. For
 * each condition, this is neighbourhood component analysis (Goldberger et al., NIPS 2004) over the batch: image i
 * picks a neighbour j with probability ∝ exp(−scale · d²(i, j)), and the loss is −log of the probability that the
 * pick shares i's label, averaged over images that have such a partner in the batch. It rewards exactly what a
 * shopper sees, labels shared by the nearest products. With `controlled` > 0, negatives that share every other
 * condition's label with i (for colour: the same type, usage and gender in another colour) weigh 1 + controlled
 * times as much, so a condition's space gains nothing from encoding the other conditions.
 */
import * as tf from '@tensorflow/tfjs';

/** Stands for log(0) in masked log-sum-exps: exp of it is 0 in float32 and it stays finite. */
const LOG_ZERO = -1e9;

/** [n, n] float: 1 where both rows carry a label for this condition (column of `labels`) and they are equal. */
function sameLabel(labels: tf.Tensor1D): { same: tf.Tensor2D; known: tf.Tensor2D } {
  const known = tf.cast(tf.greaterEqual(labels, 0), 'float32');
  const knownPair = tf.mul(tf.expandDims(known, 1), tf.expandDims(known, 0)) as tf.Tensor2D;
  const equal = tf.cast(tf.equal(tf.expandDims(labels, 1), tf.expandDims(labels, 0)), 'float32');
  return { same: tf.mul(equal, knownPair) as tf.Tensor2D, known: knownPair };
}

/** Squared L2 distances [n, n] between the rows of v [n, D]. */
function squaredDistances(v: tf.Tensor2D): tf.Tensor2D {
  const norms = tf.sum(tf.square(v), 1);
  const cross = tf.matMul(v, v, false, true);
  return tf.relu(
    tf.sub(tf.add(tf.expandDims(norms, 1), tf.expandDims(norms, 0)), tf.mul(cross, 2)),
  ) as tf.Tensor2D;
}

/**
 * Label loss over condition-space vectors [n, C, D] and label ids [n, C] (int32, −1 = no label): the mean over
 * conditions and anchors of −log P(nearest pick shares the label).
 */
export function labelLoss(
  vectors: tf.Tensor3D,
  labels: tf.Tensor2D,
  controlled: number,
  scale: number,
): tf.Scalar {
  const [n, conditions] = vectors.shape;
  const columns = tf.unstack(labels, 1) as tf.Tensor1D[];
  const pairs = columns.map(sameLabel);
  const offDiagonal = tf.sub(1, tf.eye(n));
  let lossSum: tf.Scalar = tf.scalar(0);
  let anchors: tf.Scalar = tf.scalar(0);
  for (let c = 0; c < conditions; c++) {
    const v = tf.squeeze(tf.slice(vectors, [0, c, 0], [-1, 1, -1]), [1]) as tf.Tensor2D;
    const logits = tf.mul(squaredDistances(v), -scale) as tf.Tensor2D;
    const same = tf.mul(pairs[c].same, offDiagonal) as tf.Tensor2D;
    const weight = tf.mul(tf.mul(pairs[c].known, offDiagonal), negativeWeight(pairs, c, same, controlled));
    const logAll = tf.logSumExp(maskedLog(logits, weight), 1);
    const logSame = tf.logSumExp(maskedLog(logits, same), 1);
    const hasPartner = tf.cast(tf.greater(tf.sum(same, 1), 0), 'float32');
    lossSum = tf.add(lossSum, tf.sum(tf.mul(tf.sub(logAll, logSame), hasPartner)));
    anchors = tf.add(anchors, tf.sum(hasPartner));
  }
  return tf.div(lossSum, tf.maximum(anchors, 1));
}

/** logits + log(weight), with LOG_ZERO where the weight is 0. */
function maskedLog(logits: tf.Tensor2D, weight: tf.Tensor): tf.Tensor2D {
  const positive = tf.greater(weight, 0);
  const logWeight = tf.log(tf.maximum(weight, 1e-30));
  return tf.where(positive, tf.add(logits, logWeight), tf.fill(logits.shape, LOG_ZERO)) as tf.Tensor2D;
}

/** 1 for every pair, 1 + controlled for negatives that share all the other conditions' labels. */
function negativeWeight(
  pairs: { same: tf.Tensor2D }[],
  condition: number,
  same: tf.Tensor2D,
  controlled: number,
): tf.Tensor2D {
  const others = pairs.filter((_, o) => o !== condition).map((p) => p.same);
  if (controlled === 0 || others.length === 0) return tf.onesLike(same);
  const alikeElsewhere = others.reduce((a, b) => tf.mul(a, b));
  return tf.add(1, tf.mul(tf.mul(alikeElsewhere, tf.sub(1, same)), controlled)) as tf.Tensor2D;
}
