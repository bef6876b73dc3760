// The decoder's context window: before generating, the prompt (text + image rows) plus the tokens
// asked for must fit `max_position_embeddings`. Past it, position ids leave the range the model was
// trained on (rotary models degrade, learned-position models index out of the table), so we refuse
// with a typed error instead, or leave out the oldest turns when the caller allows it.

import { ContextOverflowError, type ChatTurn } from '../core';

/** Throws ContextOverflowError when `promptTokens + maxNewTokens` exceeds `contextLength`. */
export function checkContextFits(promptTokens: number, maxNewTokens: number, contextLength: number | undefined): void {
  if (contextLength === undefined || promptTokens + maxNewTokens <= contextLength) return;
  throw new ContextOverflowError(
    promptTokens,
    maxNewTokens,
    contextLength,
    `the prompt needs ${promptTokens} tokens (text and image rows) plus ${maxNewTokens} new tokens, ` +
      `more than the model's context window of ${contextLength} tokens: start a new conversation, ask for fewer tokens, or use fewer images`,
  );
}

/**
 * The start indices to try, shortest cut first: 0 (everything), then the index of each later user
 * turn (a user turn and the answer after it leave together), up to the last user turn, which is
 * never cut: the current question and its images always stay.
 */
export function turnCuts(turns: readonly ChatTurn[]): number[] {
  const cuts = [0];
  for (let i = 1; i < turns.length; i++) if (turns[i].role === 'user') cuts.push(i);
  return cuts;
}
