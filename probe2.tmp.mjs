import pg from 'pg';
const c = new pg.Client({ host: '127.0.0.1', port: 25433, user: 'babelfish_user', password: '12345678', database: 'babelfish_db' });
await c.connect();
for (const q of process.argv.slice(2)) { try { const r = await c.query(q); console.log(JSON.stringify(r.rows)); } catch (e) { console.log('ERR', e.message); } }
await c.end();
