import { describe, expect, it } from 'vitest';
import { loadProject } from '../../../shared/config/load.js';

describe('shipped projects', () => {
  it('the demo project at the repository root loads', () => {
    const p = loadProject(new URL('../../../', import.meta.url).pathname);
    expect([...p.pipelines.keys()]).toEqual(['crm_accounts', 'crm_contacts', 'crm_opportunities']);
  });

  it('the Azure example (SQL Server → Synapse, as in docs/design.md §3) loads', () => {
    const p = loadProject(new URL('../../../examples/azure/', import.meta.url).pathname);
    const a = p.pipelines.get('crm_accounts')!;
    expect(a.source.changeDetection).toEqual({ mode: 'timestamp', column: 'ModifiedAt', lag: '5m' });
    expect(a.dependsOn).toEqual(['ref_countries']);
    expect(p.config.warehouses.DW).toMatchObject({ kind: 'synapse', setting: 'DW_CONNECTION' });
  });
});
