import sql from 'mssql';
const pool = await new sql.ConnectionPool(sql.ConnectionPool.parseConnectionString(process.argv[2])).connect();
for (const q of process.argv.slice(3)) { try { const r = await pool.request().query(q); console.log(JSON.stringify(r.recordsets)); } catch (e) { console.log('ERR', e.message); } }
await pool.close();
