// The buttons under a chat's guidance messages (no model yet, a failed download, a provider that
// cannot load): what each does in the chat. A fix that changes the model (a download, a folder, the
// built-in model, Switch to Auto) answers the question again in place of the guidance.

import type { Ctx } from '../ctx';
import { AbortedError } from '../../core';
import type { HostToWebview, MessageAction } from '../../protocol';
import { downloadFailureGuidance, isGuidanceActionId, noModelGuidance, type Guidance } from '../guidance';
import { runSettingAction } from '../guidanceActions';
import type { Conversation } from './conversation';

/** What the guidance flows need from the chat they run in (ChatController provides it). */
export interface GuidanceHost {
  readonly ctx: Ctx;
  /** the conversation shown now */
  conversation(): Conversation;
  busy(): boolean;
  post(msg: HostToWebview): void;
  /** the chat is busy (Send disabled, Stop shown) until end(); Stop aborts `signal` */
  beginWork(): { signal: AbortSignal; end(): void };
  /** answers the conversation's last question */
  answer(boxImageId?: string): Promise<void>;
}

/** Ends an answer with guidance (what happened, in words) and its buttons. */
export function finishWithGuidance(host: GuidanceHost, conversation: Conversation, messageId: string, g: Guidance, as: 'done' | 'error'): void {
  const actions: MessageAction[] = g.actions.map(({ id, label, primary }) => ({ id, label, ...(primary ? { primary } : {}) }));
  const show = conversation === host.conversation();
  if (as === 'done') {
    conversation.finish(messageId, g.text, undefined, actions);
    if (show) host.post({ type: 'messageDone', messageId, text: g.text, actions });
  } else {
    conversation.fail(messageId, g.text, actions);
    if (show) host.post({ type: 'messageError', messageId, error: g.text, actions });
  }
}

/** One of a guidance message's buttons. Fixes that change the model answer the question again. */
export async function runGuidanceButton(host: GuidanceHost, messageId: string, actionId: string): Promise<void> {
  if (!isGuidanceActionId(actionId)) throw new Error(`Unknown action "${actionId}".`);
  const m = host.conversation().messages.find((x) => x.id === messageId);
  // a button of a message that is gone (or was answered since) does nothing
  if (!m?.actions?.some((a) => a.id === actionId)) return;
  let fixed = false;
  switch (actionId) {
    case 'download':
      return downloadInChat(host, messageId);
    case 'localFolder':
      fixed = (await host.ctx.models.pickLocalFolder()) !== undefined;
      break;
    case 'builtin':
      fixed = (await host.ctx.models.useBuiltin()) !== undefined;
      break;
    case 'askDownscaled':
      // the engine makes the smaller copy (the host never decodes images); the file is not touched
      fixed = host.conversation().allowDownscale().length > 0;
      break;
    default:
      fixed = await runSettingAction(actionId, host.ctx.log, host.ctx.extensionUri);
  }
  if (fixed) await answerAgain(host, messageId);
}

/**
 * Download from the chat: the guidance message becomes "Downloading…" (progress and Cancel in the
 * notification, Stop here), then the question is answered; a failure says why, with its buttons.
 */
async function downloadInChat(host: GuidanceHost, messageId: string): Promise<void> {
  if (host.busy()) throw new Error('An answer is still being generated. Stop it first.');
  const conversation = host.conversation();
  const missing = await host.ctx.models.missingModel();
  if (!missing) return answerAgain(host, messageId);
  const last = conversation.messages.at(-1)?.id === messageId;
  if (!last) {
    // an older message: download (confirming the exact size first) without taking over the conversation
    await host.ctx.models.ensureModel();
    return;
  }
  conversation.removeFrom(messageId);
  host.post({ type: 'messagesRemoved', fromMessageId: messageId });
  const msg = conversation.startAssistant();
  conversation.appendDelta(msg.id, `Downloading ${missing.label}… Progress is in the notification; Stop cancels it.`);
  host.post({ type: 'messageAdded', message: conversation.messages.find((x) => x.id === msg.id)! });
  const work = host.beginWork();
  let folder: string | undefined;
  try {
    folder = await host.ctx.models.downloadMissing(work.signal, (offer) => {
      // the exact size, licence and files chosen per part, once the Hub has listed them
      const text = `\n\n${offer.sizeText} · ${offer.detail}`;
      conversation.appendDelta(msg.id, text);
      if (conversation === host.conversation()) host.post({ type: 'delta', messageId: msg.id, text });
    });
  } catch (err) {
    if (err instanceof AbortedError || work.signal.aborted) {
      const g = noModelGuidance(missing.situation);
      finishWithGuidance(host, conversation, msg.id, { ...g, text: `Download stopped; downloading again resumes where it stopped.\n\n${g.text}` }, 'done');
    } else {
      // the failure replaces "Downloading…": the words say what happened
      conversation.finish(msg.id, '');
      if (conversation === host.conversation()) host.post({ type: 'messageDone', messageId: msg.id, text: '' });
      finishWithGuidance(host, conversation, msg.id, downloadFailureGuidance(err, missing.label), 'error');
    }
    return;
  } finally {
    work.end();
  }
  await host.ctx.refreshModelAvailability();
  if (folder) await answerAgain(host, msg.id);
}

/** Replaces a guidance answer (the last message) with a real one. */
async function answerAgain(host: GuidanceHost, messageId: string): Promise<void> {
  const c = host.conversation();
  const m = c.messages.at(-1);
  if (host.busy() || m?.id !== messageId || m.role !== 'assistant') return;
  c.removeFrom(messageId);
  host.post({ type: 'messagesRemoved', fromMessageId: messageId });
  await host.answer(m.boxImageId);
}
