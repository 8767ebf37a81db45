import { defineErrors } from '@tandem/core';

/**
 * Error codes of haresources and of the agent runner. Users and tests match on the code; the
 * package README lists every one (a test checks that it does).
 */
export const RESOURCES_ERRORS = defineErrors({
  E_HARES_NO_RESOURCES: 'a haresources line names a node but no resource',
  E_HARES_BAD_NODE: 'the first word of a haresources line is not a node of ha.cf',
  E_HARES_DUPLICATE_KEY: 'the first resource of a line (the group key) is already the key of an earlier line',
  E_HARES_DUPLICATE_RESOURCE: 'the same resource appears in two groups (warning)',
  E_HARES_BAD_RESOURCE: 'a resource token is malformed (empty agent name, empty :: argument, bad characters)',
  E_HARES_BAD_IP: 'an IP-address resource (IPaddr shorthand) is not a valid address[/prefix[/iface[/broadcast]]]',
  E_HARES_CONTINUATION: 'the file ends with a line continued by a backslash',
  E_HARES_AGENT_NOT_FOUND: 'no executable agent of that name in the resource.d, init.d or OCF directories (machine-dependent)',
  E_RSC_NOT_FOUND: 'an agent could not be found or is not executable when it was to be run',
  E_RSC_START_FAILED: 'a resource failed to start; the group was rolled back',
  E_RSC_STOP_FAILED: 'a resource failed to stop after every retry and still reports running',
});
