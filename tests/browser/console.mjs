// The web console in a real browser: Debian's chromium, headless, driven by Playwright.
// Run by tests/sandbox/console.rs against a sandbox it started and filled:
//   node console.mjs <base URL> <artifacts dir> <facts JSON>
// facts: { printed_url, printed_name, failed_name, sleepy_name, branch_name, map_name, dynamic_name,
//          lp_version_url (FlyteRemote.generate_console_url of a launch plan), review_name and
//          title_name (executions waiting at an approval and an input) }.
// Exits 0 when every check holds; otherwise prints what failed (and keeps a screenshot).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium } from './chromium.mjs';

const [base, artifacts, factsJson] = process.argv.slice(2);
const facts = JSON.parse(factsJson);
mkdirSync(artifacts, { recursive: true });

const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
page.setDefaultTimeout(30_000);
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e}`));
page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
// Offline: the console may ask nothing of any other origin.
page.on('request', (r) => { if (!r.url().startsWith(base)) problems.push(`request to another origin: ${r.url()}`); });

// The last API answers, printed when a check fails.
const answers = [];
page.on('response', async (r) => {
  if (!r.url().includes('/api/v1/')) return;
  const body = await r.text().catch(() => '');
  answers.push(`${r.status()} ${r.request().method()} ${r.url().slice(base.length)} ${body.slice(0, 300)}`);
  if (answers.length > 12) answers.shift();
});

let step = 0;
async function shot(name) {
  step += 1;
  await page.screenshot({ path: join(artifacts, `${String(step).padStart(2, '0')}-${name}.png`), fullPage: true });
}
function check(cond, what) {
  if (!cond) throw new Error(what);
}
const execPhase = () => page.locator('.exec-head .phase').first();

try {
  // 1. The link `union run --remote` printed opens that execution's page.
  await page.goto(facts.printed_url);
  await page.getByRole('heading', { name: facts.printed_name }).waitFor();
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor();
  await page.locator('#outputs').getByText('Hello, Bob!').waitFor();
  await shot('printed-link');
  // FlyteRemote's link to a launch plan version opens that version's page.
  await page.goto(facts.lp_version_url);
  await page.getByRole('heading', { name: 'workflows.hello.hello_world_wf' }).waitFor();
  const shownVersion = await page.locator('#version').textContent();
  check(facts.lp_version_url.endsWith(`/version/${shownVersion}`), `the page shows version ${shownVersion} for ${facts.lp_version_url}`);

  // 2. Projects, then the project's executions, filterable by phase.
  await page.goto(`${base}/console`);
  await page.getByRole('link', { name: /flytesnacks/ }).click();
  await page.locator(`#executions tr[data-execution="${facts.printed_name}"]`).waitFor();
  await page.locator('#phase-filter').selectOption('FAILED');
  await page.locator(`#executions tr[data-execution="${facts.failed_name}"]`).waitFor();
  await page.locator(`#executions tr[data-execution="${facts.printed_name}"]`).waitFor({ state: 'detached' });
  await shot('executions-failed-only');
  // The filter is in the URL: a reload (or the link shared) shows the same list.
  check(new URL(page.url()).searchParams.get('phase') === 'FAILED', `the filter is not in the URL: ${page.url()}`);
  await page.reload();
  await page.locator(`#executions tr[data-execution="${facts.failed_name}"]`).waitFor();
  check((await page.locator('#phase-filter').inputValue()) === 'FAILED', 'the phase filter did not survive a reload');
  check(await page.locator(`#executions tr[data-execution="${facts.printed_name}"]`).count() === 0,
    'a reload with ?phase=FAILED lists a succeeded execution');

  // Pages: with three to a page, "Show 3 more" shows six.
  await page.goto(`${base}/console/projects/flytesnacks/executions?domain=development&limit=3`);
  await page.locator('#executions tbody tr').nth(2).waitFor();
  check(await page.locator('#executions tbody tr').count() === 3, 'a page of three does not show three executions');
  await page.locator('#more-executions').click();
  await page.locator('#executions tbody tr').nth(5).waitFor();
  check(await page.locator('#executions tbody tr').count() === 6, 'the second page does not add three executions');
  await shot('executions-two-pages');

  // 3. The launch plan, its typed inputs with the default filled in; launch Alice from the form.
  await page.getByRole('link', { name: 'Launch plans' }).click();
  await page.getByRole('link', { name: 'workflows.hello.hello_world_wf' }).click();
  await page.getByRole('cell', { name: 'str' }).first().waitFor();
  await page.locator('#launch-button').click();
  const nameInput = page.locator('#input-name');
  check((await nameInput.inputValue()) === 'world', `the form's default for name is ${await nameInput.inputValue()}, not world`);
  await nameInput.fill('Alice');
  await shot('launch-form');
  await page.locator('#launch-submit').click();
  await page.waitForURL(/\/console\/projects\/flytesnacks\/domains\/development\/executions\/[a-z0-9]+$/);
  const aliceUrl = page.url();

  // 4. It runs to SUCCEEDED, live, and the page shows its output.
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  await page.locator('#outputs').getByText('Hello, Alice!').waitFor();
  check(await page.locator('#inputs').getByText('Alice').count() > 0, 'the inputs do not show Alice');

  // 5. The graph: one node per task (the hello workflow has one), succeeded, between start and end.
  const tasks = page.locator('svg.graph g.node[data-kind="task"]');
  check(await tasks.count() === 1, `the graph shows ${await tasks.count()} task nodes, not 1`);
  check(await tasks.first().getAttribute('data-phase') === 'SUCCEEDED', 'the task node is not SUCCEEDED');
  check(await page.locator('svg.graph g.node[data-kind="start"]').count() === 1, 'no start node');
  check(await page.locator('svg.graph path.edge').count() === 2, 'start → say_hello → end are not two edges');
  await shot('execution-succeeded');

  // 6. A task's log: the attempt's log, as the sandbox serves it.
  await tasks.first().click();
  await page.locator('#node-panel .log-button[data-attempt="0"]').click();
  const log = page.locator('#log[data-attempt="0"]');
  await log.waitFor();
  const nodeId = await tasks.first().getAttribute('data-node-id');
  const name = aliceUrl.split('/').pop();
  const served = await (await page.request.get(`${base}/logs/flytesnacks/development/${name}/${nodeId}/0`)).text();
  await page.waitForFunction(([expected]) => document.querySelector('#log').textContent === expected, [served]);
  await shot('task-log');

  // 7. Relaunch: a new execution with the same inputs, marked as a relaunch of this one.
  await page.locator('#relaunch').click();
  await page.waitForURL((u) => u.toString() !== aliceUrl && /\/executions\/[a-z0-9]+$/.test(u.toString()));
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  await page.locator('#outputs').getByText('Hello, Alice!').waitFor();
  await page.locator('.facts').getByText('RELAUNCH').waitFor();
  await shot('relaunched');

  // 8. A failed execution: the error with the user's traceback.
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/executions/${facts.failed_name}`);
  await page.locator('.exec-head [data-phase="FAILED"]').waitFor();
  const error = await page.locator('#execution-error').textContent();
  check(error.includes('ValueError: n must be >= 0, got -1'), `the error does not name the ValueError: ${error}`);
  check(error.includes('check(n)'), `the error has no traceback through the user's code: ${error}`);
  await shot('failed');

  // 9. A running task's log is followed while it runs; Terminate stops the execution.
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/executions/${facts.sleepy_name}`);
  await page.locator('svg.graph g.node[data-kind="task"][data-phase="RUNNING"]').waitFor({ timeout: 240_000 });
  await page.locator('svg.graph g.node[data-kind="task"]').first().click();
  await page.locator('#node-panel .log-button[data-attempt="0"]').click();
  await page.locator('#log').getByText('sleeping').waitFor({ timeout: 120_000 });
  check(await execPhase().getAttribute('data-phase') === 'RUNNING', 'the sleepy execution is not RUNNING while its log is read');
  await shot('log-while-running');
  await page.locator('#terminate').click();
  await page.locator('.exec-head [data-phase="ABORTED"]').waitFor({ timeout: 120_000 });
  await shot('terminated');

  // 10. A branch node expands to show the case that ran.
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/executions/${facts.branch_name}`);
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  const branch = page.locator('svg.graph g.node[data-kind="branch"]');
  await branch.waitFor();
  await branch.locator('.toggle').click();
  await page.locator('svg.graph g.cluster').waitFor();
  const inside = page.locator('svg.graph g.node[data-node-id^="n0-0-"]');
  await inside.first().waitFor();
  check(await inside.count() === 1, `the expanded branch shows ${await inside.count()} nodes, not the one case that ran`);
  await page.locator('#outputs').getByText('7 is small').waitFor();
  await shot('branch-expanded');

  // 11. A map task expands to one node per element, each with its own state and log.
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/executions/${facts.map_name}`);
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  const array = page.locator('svg.graph g.node[data-kind="array"]');
  await array.locator('.toggle').click();
  const arrayId = await page.locator('svg.graph g.cluster').getAttribute('data-node-id');
  const elements = page.locator(`svg.graph g.node[data-node-id^="${arrayId}-0-"]`);
  await elements.first().waitFor();
  check(await elements.count() === 3, `the expanded map task shows ${await elements.count()} elements, not 3`);
  check(await page.locator(`svg.graph g.node[data-node-id^="${arrayId}-0-"][data-phase="SUCCEEDED"]`).count() === 3, 'not every element SUCCEEDED');
  await elements.nth(2).click();
  await page.locator('#node-panel .log-button[data-attempt="0"]').click();
  await page.locator('#log').waitFor();
  await page.locator('#outputs').getByText('5').waitFor();
  await shot('map-expanded');

  // 12. Typed inputs from the form (a list as JSON, an int over its default, an Optional), then
  // the subworkflow expanded, and a dataclass output read from its msgpack.
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/launchPlans/workflows.calc.calc_wf?launch`);
  await page.locator('#launch-form').waitFor();
  check(await page.locator('#input-factor').inputValue() === '2', 'factor does not default to 2');
  check(await page.locator('#input-threshold').inputValue() === '4.5', 'threshold does not default to 4.5');
  await page.locator('#launch-submit').click();
  await page.locator('#launch-form .field-error').filter({ hasText: 'a value is required' }).waitFor();
  await page.locator('#input-xs').fill('[1, 2, "three"]');
  await page.locator('#launch-submit').click();
  await page.locator('#launch-form .field-error').filter({ hasText: 'must be a whole number' }).waitFor();
  check(/\/launchPlans\//.test(page.url()), 'a wrong value started an execution');
  await page.locator('#input-xs').fill('[1, 2, 3, 4, 5]');
  await page.locator('#input-factor').fill('3');
  await page.locator('#input-label').fill('demo');
  await shot('typed-launch-form');
  await page.locator('#launch-submit').click();
  await page.waitForURL(/\/executions\/[a-z0-9]+$/);
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  await page.locator('#outputs').getByText('demo: mean 9.0 of 5 values is above 4.5').waitFor();
  const sub = page.locator('svg.graph g.node[data-kind="subworkflow"]');
  await sub.locator('.toggle').click();
  const subId = await page.locator('svg.graph g.cluster').getAttribute('data-node-id');
  const inner = page.locator(`svg.graph g.node[data-node-id^="${subId}-0-"]`);
  await inner.first().waitFor();
  check(await inner.count() === 2, `the expanded subworkflow shows ${await inner.count()} nodes, not scale and summarize`);
  await page.locator('svg.graph g.node[data-kind="task"]', { hasText: 'summarize' }).click();
  await page.locator('#node-panel').getByText('"mean": 9').waitFor();
  await shot('subworkflow-expanded');

  // 13. A dynamic node expands to the workflow its task returned, a chain of three tasks: its
  // two edges, and the parent's edges routed to the chain's ends (four in all).
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/executions/${facts.dynamic_name}`);
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  await page.locator('svg.graph g.node[data-node-id="n0"] .toggle').click();
  const chain = page.locator('svg.graph g.node[data-node-id^="n0-0-dn"]');
  await chain.first().waitFor();
  check(await chain.count() === 3, `the expanded dynamic node shows ${await chain.count()} nodes, not 3`);
  check(await page.locator('svg.graph g.node[data-node-id^="n0-0-dn"]', { hasText: 'inc' }).count() === 3, 'the chain\'s nodes are not named after their task');
  const edges = await page.locator('svg.graph path.edge').count();
  check(edges === 4, `the expanded dynamic node has ${edges} edges, not 4 (start → inc → inc → inc → end)`);
  await page.locator('#outputs').getByText('3').waitFor();
  await shot('dynamic-expanded');

  // 14. Gate nodes answered from the page: an approval, then a typed input.
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/executions/${facts.review_name}`);
  await page.locator('#signal-review-approve').waitFor({ timeout: 240_000 });
  await shot('waiting-for-approval');
  await page.locator('#signal-review-approve').click();
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  await page.locator('#outputs').getByText('HELLO, ADA!').waitFor();
  check(await page.locator('#signals .signal').count() === 0, 'the answered approval is still offered');
  await page.goto(`${base}/console/projects/flytesnacks/domains/development/executions/${facts.title_name}`);
  await page.locator('#signal-title-input').waitFor({ timeout: 240_000 });
  await page.locator('#signal-title-input').fill('big news');
  await page.locator('#signal-title-send').click();
  await page.locator('.exec-head [data-phase="SUCCEEDED"]').waitFor({ timeout: 240_000 });
  await page.locator('#outputs').getByText('BIG NEWS').waitFor();
  await shot('input-given');
} catch (err) {
  problems.push(String(err && err.stack ? err.stack : err));
  problems.push(`last API answers:\n${answers.join('\n')}`);
  await shot('failure').catch(() => {});
}
await browser.close();
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`console checks passed; screenshots in ${artifacts}`);
