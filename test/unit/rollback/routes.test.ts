import { describe, expect, it } from 'vitest';
import { apiRoutes } from '../../../shared/http/routes.js';

describe('rollback and restore routes', () => {
  it('are served by the API with the admin key, POST only', () => {
    const byName = new Map(apiRoutes.map((r) => [r.name, r]));
    expect(byName.get('rollback')).toMatchObject({ methods: ['POST'], route: 'pipelines/{name}/rollback', authLevel: 'admin' });
    expect(byName.get('restore')).toMatchObject({ methods: ['POST'], route: 'pipelines/{name}/restore', authLevel: 'admin' });
  });
});
