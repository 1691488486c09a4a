import { loadProject } from '../../shared/config/load.js';
import { readProjectSettings } from '../../shared/config/settings.js';
import { doctorExitCode, runDoctor } from '../../shared/engine/doctor.js';
import { parse, printJson, projectDir, table, type Command } from '../common.js';

const usage = 'tidemark doctor [--project DIR] [--json]';

export const doctorCommand: Command = {
  summary: 'check settings, storage, sources and warehouses; say exactly what is wrong (exit 0 ok, 1 a check failed, 2 config error)',
  usage,
  async run(argv) {
    const { values } = parse(argv, {}, usage);
    // A config error throws ConfigError here, which main.ts turns into exit 2 with the message.
    // Broken pipeline files are reported as failed checks, so every other problem still shows.
    const project = loadProject(projectDir(values), { broken: 'collect' });
    const settings = readProjectSettings(project.dir, process.env);
    const checks = await runDoctor(project, { env: settings.env, originOf: settings.originOf });
    const code = doctorExitCode(checks);
    if (values.json) printJson({ ok: code === 0, checks });
    else {
      const mark = { ok: 'ok', warn: 'WARN', fail: 'FAIL' } as const;
      process.stdout.write(`${table(checks.map((c) => ({ ...c, status: mark[c.status] })), ['status', 'area', 'name', 'detail'])}\n`);
      const failed = checks.filter((c) => c.status === 'fail').length;
      process.stdout.write(failed ? `\n${failed} check(s) failed.\n` : '\nall checks passed.\n');
    }
    return code;
  },
};
