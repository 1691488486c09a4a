/**
 * TEST DOUBLE of Salesforce, a service that cannot run here: the local HTTP server of
 * shared/local/salesforce-double.ts (its header lists the documented endpoints it speaks).
 * It lives under shared/local because `tidemark demo --source salesforce` runs on it too.
 */
export { SalesforceDouble, type Fault, type SfRow } from '../../shared/local/salesforce-double.js';
