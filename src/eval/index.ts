// Evaluation the paper's way, on our engine (`llava eval`): ScienceQA-format multiple choice with
// the paper's accuracy table, short-answer exact match, grounding IoU, and the judged relative score
// through an OpenAI-compatible judge. Imports the doors of core, engine (the model it evaluates) and
// grounding (box parsing and frames); never vscode, the hub, captioning or the process boundary.

export { availableTasks, accuracyRows, modelAnswerer, runEval, TASK_FILES, TASKS } from './run';
export type { AccuracyRow, Answer, Answerer, EvalOptions, EvalReport, EvalTask } from './run';
export { formatReport } from './report';
export { loadScienceQa, multipleChoicePrompt, parseChoice, paperGroups, MULTIPLE_CHOICE_PROMPT, type McItem } from './scienceQa';
export { loadShortAnswers, normaliseAnswer, shortAnswerCorrect, type ShortItem } from './shortAnswer';
export { iou, loadGrounding, modelBoxFrame, predictedBox, type GroundingItem, type PixelBox } from './boxScore';
export { judgePrompt, judgeReview, loadBench, parseScores, relativeScores, JUDGE_SYSTEM, type BenchItem, type JudgedScore, type JudgeOptions } from './judge';
export { MAX_DATA_BYTES } from './dataFiles';
