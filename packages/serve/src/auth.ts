// Bearer key check. Both sides are hashed first so the comparison is constant-time whatever the lengths.
import { createHash, timingSafeEqual } from 'node:crypto';

/** Paths open without a key, as in llama-server. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/health', '/v1/health']);

export function makeKeyCheck(apiKey: string): (authorization: string | undefined) => boolean {
  const expected = createHash('sha256').update(apiKey).digest();
  return (authorization) => {
    const given = authorization?.startsWith('Bearer ') ? authorization.slice(7) : (authorization ?? '');
    return timingSafeEqual(createHash('sha256').update(given).digest(), expected);
  };
}
