import { readFileSync, statSync } from 'node:fs';
import type { ReplicationConfig } from '../config.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export class CredentialsError extends Error {}

/**
 * `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, or a file only its owner can read holding either
 * JSON `{ "accessKeyId", "secretAccessKey" }` or `KEY=value` lines with the same names as the
 * variables. Secrets never reach a log line: callers only ever log the key id.
 */
export function loadCredentials(cfg: ReplicationConfig, env: NodeJS.ProcessEnv = process.env): S3Credentials {
  if (cfg.credentialsFile) {
    const st = statSync(cfg.credentialsFile, { throwIfNoEntry: false });
    if (!st) throw new CredentialsError(`replication.credentialsFile ${cfg.credentialsFile} does not exist`);
    if ((st.mode & 0o077) !== 0)
      throw new CredentialsError(
        `replication.credentialsFile ${cfg.credentialsFile} must be mode 0600 (it is ${(st.mode & 0o777).toString(8)})`,
      );
    const text = readFileSync(cfg.credentialsFile, 'utf8');
    let accessKeyId: string | undefined;
    let secretAccessKey: string | undefined;
    try {
      const j = JSON.parse(text) as Record<string, unknown>;
      accessKeyId = typeof j.accessKeyId === 'string' ? j.accessKeyId : undefined;
      secretAccessKey = typeof j.secretAccessKey === 'string' ? j.secretAccessKey : undefined;
    } catch {
      for (const line of text.split('\n')) {
        const m = /^\s*(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)\s*=\s*(\S+)\s*$/.exec(line);
        if (m?.[1] === 'AWS_ACCESS_KEY_ID') accessKeyId = m[2];
        if (m?.[1] === 'AWS_SECRET_ACCESS_KEY') secretAccessKey = m[2];
      }
    }
    if (!accessKeyId || !secretAccessKey)
      throw new CredentialsError(
        `replication.credentialsFile ${cfg.credentialsFile} holds no access key id and secret`,
      );
    return { accessKeyId, secretAccessKey };
  }
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new CredentialsError(
      'replication needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment or replication.credentialsFile',
    );
  return { accessKeyId, secretAccessKey };
}
