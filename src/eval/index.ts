/** The eval stage: triplet accuracy and retrieval MAP of a model on a split, as JSON reports and tables. */
export {
  embedProducts,
  productsOf,
  tripletAccuracy,
  type ProductVectors,
  type RetrievalSummary,
} from './evaluate.ts';
export { evaluateModel, formatReport, type EvaluationReport } from './report.ts';
export { runEval, type EvalFlags } from './run.ts';
