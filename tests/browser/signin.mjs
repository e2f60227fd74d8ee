// The console against a sandbox started with --auth: it signs in through the sandbox's OAuth2
// server (authorization code + PKCE, its approve page answered), then shows the projects.
//   node signin.mjs <base URL> <artifacts dir>
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium } from './chromium.mjs';

const [base, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
page.setDefaultTimeout(30_000);
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e}`));
try {
  await page.goto(`${base}/console/projects/flytesnacks/executions?domain=development`);
  // The sandbox's approve page.
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await page.screenshot({ path: join(artifacts, 'signin-01-approve.png'), fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();
  // Back where it started, signed in.
  await page.waitForURL(`${base}/console/projects/flytesnacks/executions?domain=development`);
  await page.getByText('No executions match').waitFor();
  await page.goto(`${base}/console`);
  await page.getByRole('link', { name: /flytesnacks/ }).waitFor();
  await page.screenshot({ path: join(artifacts, 'signin-02-signed-in.png'), fullPage: true });
} catch (err) {
  problems.push(String(err && err.stack ? err.stack : err));
  await page.screenshot({ path: join(artifacts, 'signin-failure.png'), fullPage: true }).catch(() => {});
}
await browser.close();
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('sign-in checks passed');
