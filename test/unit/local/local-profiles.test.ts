import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../functions/core/errors.js';
import { CachedSecretSource } from '../../../functions/core/secret-cache.js';
import {
  defaultProfileFromEnv,
  LocalProfileFetcher,
  readProfilesFile,
} from '../../../functions/local/local-profiles.js';
import { FakeClock } from '../../support/fake-clock.js';

function profilesFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'profiles-')), 'profiles.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const billing = { username: 'u', password: 'p1', organisation: 'O' };

describe('defaultProfileFromEnv', () => {
  it('is undefined without CRM_* and builds password or web API key profiles', () => {
    expect(defaultProfileFromEnv({})).toBeUndefined();
    expect(defaultProfileFromEnv({ CRM_USERNAME: '', CRM_PASSWORD: '' })).toBeUndefined();
    expect(
      defaultProfileFromEnv({
        CRM_USERNAME: 'u',
        CRM_PASSWORD: 'p',
        CRM_ORGANISATION: 'O',
        CRM_UNIT: 'U',
      }),
    ).toEqual({ username: 'u', password: 'p', organisation: 'O', unit: 'U' });
    expect(defaultProfileFromEnv({ CRM_WEB_API_KEY: 'k' })).toEqual({ webApiKey: 'k' });
  });
});

describe('readProfilesFile', () => {
  it('fails fast naming PROFILES_FILE, never echoing the content', () => {
    const cases = [profilesFile('{"default": {"password": "hunter2"'), profilesFile([1, 2])];
    for (const path of cases) {
      expect(() => readProfilesFile(path)).toThrow(ConfigError);
      expect(() => readProfilesFile(path)).toThrow(/PROFILES_FILE/);
      expect(() => readProfilesFile(path)).not.toThrow(/hunter2/);
    }
    expect(() => readProfilesFile(profilesFile({ 'bad name': billing }))).toThrow(/PROFILES_FILE/);
    expect(() => readProfilesFile('/nonexistent/profiles.json')).toThrow(/PROFILES_FILE/);
  });

  it('keeps keys named like Object members as ordinary profiles', () => {
    const raw = `{"constructor": ${JSON.stringify(billing)}, "__proto__": ${JSON.stringify(billing)}}`;
    const profiles = readProfilesFile(profilesFile(raw));
    expect(Object.keys(profiles).sort()).toEqual(['__proto__', 'constructor']);
  });
});

describe('LocalProfileFetcher', () => {
  it('versions a value stably; with the secret cache, a changed file counts after the TTL', async () => {
    // Prepare
    const clock = new FakeClock();
    const path = profilesFile({ billing });
    const fetcher = new LocalProfileFetcher({
      defaultProfile: undefined,
      profilesFile: path,
      clock,
      ttlSeconds: 10,
    });
    const secrets = new CachedSecretSource(fetcher, clock, 10);
    // Act
    const first = await secrets.get('billing');
    const again = (await fetcher.fetch('billing')).version;
    writeFileSync(path, JSON.stringify({ billing: { ...billing, password: 'p2' }, more: billing }));
    const beforeTtl = await secrets.get('billing');
    await clock.advance(10_000);
    const afterTtl = await secrets.get('billing');
    // Assess
    expect(again).toBe(first.version);
    expect(beforeTtl.version).toBe(first.version);
    expect(afterTtl.version).not.toBe(first.version);
    expect(afterTtl.credentials).toMatchObject({ password: 'p2' });
    expect(fetcher.has('more')).toBe(true);
    expect(first.version).toMatch(/^[0-9a-f]{24}$/);
  });

  it('keeps the last good profiles when a re-read fails, and says so', async () => {
    const clock = new FakeClock();
    const path = profilesFile({ billing });
    const errors: unknown[] = [];
    const fetcher = new LocalProfileFetcher({
      defaultProfile: undefined,
      profilesFile: path,
      clock,
      ttlSeconds: 1,
      onReloadError: (error) => errors.push(error),
    });
    writeFileSync(path, '{ not json');
    await clock.advance(1000);
    expect(fetcher.has('billing')).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it('lets the CRM_* default profile win over the file’s default', async () => {
    const fetcher = new LocalProfileFetcher({
      defaultProfile: { webApiKey: 'from-env' },
      profilesFile: profilesFile({ default: billing }),
      clock: new FakeClock(),
      ttlSeconds: 300,
    });
    expect(JSON.parse((await fetcher.fetch('default')).value)).toEqual({ webApiKey: 'from-env' });
    await expect(fetcher.fetch('nobody')).rejects.toThrow(/no secret/);
  });
});
