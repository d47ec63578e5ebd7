/**
 * Notifications: a generic webhook (JSON POST) and Telegram (Bot API sendMessage, base URL configurable).
 * A notification that fails is logged and never fails the backup. Bodies are scrubbed of secrets.
 */
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { scrubValue, scrub } from '../core/redact.ts';
import { errorMessage } from '../core/errors.ts';

export interface Event {
  event: 'backup.succeeded' | 'backup.failed' | 'backup.partial' | 'verify.failed' | 'verify.succeeded';
  host: string;
  at: string;
  backupId: string | null;
  message: string;
  details?: Record<string, unknown>;
}

async function post(url: string, body: unknown, timeoutMs = 10_000): Promise<void> {
  const r = await fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'helpdesk-dr' },
    body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
  });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
}

export async function notify(config: Config['notify'], e: Event, log: Logger): Promise<void> {
  const ok = e.event.endsWith('succeeded');
  if (ok && !config.onSuccess) return;
  const body = scrubValue(e);
  const jobs: Promise<void>[] = [];
  if (config.webhookUrl) {
    jobs.push(post(config.webhookUrl, body).catch((err: unknown) => log.error({ err: scrub(errorMessage(err)) }, 'webhook notification failed')));
  }
  if (config.telegram) {
    const t = config.telegram;
    const text = `${ok ? '✅' : '❌'} helpdesk-dr on ${e.host}: ${body.message}`;
    jobs.push(post(`${t.apiUrl.replace(/\/$/, '')}/bot${t.token}/sendMessage`, { chat_id: t.chatId, text, disable_web_page_preview: true })
      .catch((err: unknown) => log.error({ err: scrub(errorMessage(err)) }, 'Telegram notification failed')));
  }
  await Promise.all(jobs);
}
