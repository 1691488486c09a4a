import type { InvocationContext } from '@azure/functions';
import type { LogSink } from '../shared/telemetry/logger.js';

/** Routes engine log lines to the invocation's logger, so the host ships them to App Insights. */
export function invocationSink(ic: InvocationContext): LogSink {
  return (level, message, props) => {
    const line = `${message} ${JSON.stringify(props)}`;
    if (level === 'error') ic.error(line);
    else if (level === 'warn') ic.warn(line);
    else if (level === 'debug') ic.debug(line);
    else ic.log(line);
  };
}
