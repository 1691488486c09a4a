// tidemark on Azure: a Flex Consumption Function App (Node 20, system-assigned managed identity),
// its storage (containers, queues, tables of shared/storage/layout.ts), the Event Grid
// subscription the Flex blob trigger needs, Application Insights on Log Analytics, alert rules
// and role assignments. Deploy: see README "Deploy to Azure".

targetScope = 'resourceGroup'

@description('Name prefix for every resource; the Function App is <prefix>-func.')
@minLength(3)
@maxLength(20)
param prefix string

param location string = resourceGroup().location

@description('Flex Consumption instance memory (MB): DuckDB transforms run inside it.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Upper bound of Flex Consumption scale-out.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Hierarchical namespace (ADLS Gen2): needed when a Synapse warehouse COPYs the changes Parquet through the .dfs endpoint with managed identity.')
param enableHierarchicalNamespace bool = false

@description('Second pass only: the blob trigger system key exists after the code was published once (README "Deploy to Azure").')
param deployEventSubscription bool = false

@description('App settings named by tidemark.yaml (connections/warehouses `setting:`) and by pipeline webhooks, name → value. Use Key Vault references, e.g. @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/crm-sql/), never a secret in the parameters file.')
@secure()
param connectionSettings object = {}

@description('Where alerts are mailed. Empty: the action group has no receivers.')
param alertEmail string = ''

@description('Per pipeline: alert when no run succeeded within `hours` (1-48).')
param stalePipelines array = []

@description('Minutes a run may hold its pipeline lease before it counts as stuck (TIDEMARK_LEASE_MINUTES).')
param leaseMinutes int = 60

@description('Seconds between two looks at a waiting run\'s dependsOn pipelines (TIDEMARK_DEPENDENCY_POLL_SECONDS).')
param dependencyPollSeconds int = 60

@description('First webhook retry delay in ms, doubling per attempt (TIDEMARK_WEBHOOK_RETRY_DELAY_MS).')
param webhookRetryDelayMs int = 2000

var appName = '${prefix}-func'
var storageName = take(toLower(replace('${prefix}st${uniqueString(resourceGroup().id)}', '-', '')), 24)
var deploymentContainer = 'app-package'
// shared/storage/layout.ts: CONTAINERS, QUEUES (+ "-poison"), TABLES.
var containers = ['raw', 'changes', 'state', 'quarantine', 'backups', deploymentContainer]
var queues = ['extract', 'merge', 'validate', 'extract-poison', 'merge-poison', 'validate-poison', 'webjobs-blobtrigger-poison']
var tables = ['checkpoints', 'runs', 'validations', 'leases', 'blobreceipts', 'backups']

// Built-in role definition ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
// What the app identity needs (learn.microsoft.com/azure/azure-functions/functions-reference,
// "Connecting to host storage with an identity"): the host needs Storage Blob Data Owner; a blob
// trigger (also with source EventGrid) needs, on the AzureWebJobsStorage connection, Storage
// Account Contributor, Storage Blob Data Owner and Storage Queue Data Contributor (it keeps blob
// receipts and poison messages there); the queue triggers and the engine's queue writes need
// Storage Queue Data Contributor; the engine's tables (and the host's diagnostic events) need
// Storage Table Data Contributor.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageAccountContributor: '17d1049b-9a84-46fb-8f53-869881c3d3ab'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

/* ---------------- storage ---------------- */

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
    // No account keys: the app, the host, the triggers and the deployment package all use the
    // app's managed identity (README "Security").
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    isHnsEnabled: enableHierarchicalNamespace
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in containers: {
  parent: blobService
  name: c
  properties: { publicAccess: 'None' }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for q in queues: {
  parent: queueService
  name: q
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource storageTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for t in tables: {
  parent: tableService
  name: t
}]

/* ---------------- monitoring ---------------- */

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${prefix}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${prefix}-ai'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

/* ---------------- function app ---------------- */

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${prefix}-plan'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: { minTlsVersion: '1.2' }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Node 20: @azure/monitor-opentelemetry 1.16 is the last line that supports it (README).
      runtime: { name: 'node', version: '20' }
    }
  }
}

// Every setting the code reads (test/unit/infra/settings.test.ts keeps this list complete).
// AzureWebJobsStorage is an identity-based connection: the host, the blob and queue triggers
// (connection: 'AzureWebJobsStorage') and the engine's clients (shared/storage/clients.ts) read
// the same __blobServiceUri / __queueServiceUri / __tableServiceUri with the managed identity.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: union(
    {
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      AzureWebJobsStorage__credential: 'managedidentity'
      APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
      // Telemetry (the host's and the engine's exporter) signed by the managed identity: Monitoring Metrics Publisher below.
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
      TIDEMARK_PROJECT_DIR: '.'
      TIDEMARK_WORK_DIR: '/tmp/tidemark'
      TIDEMARK_BLOB_CACHE_MB: '2048'
      TIDEMARK_RUN_FILES_KEEP_DAYS: '7'
      TIDEMARK_LEASE_MINUTES: string(leaseMinutes)
      // The same as host.json: the stage claim (shared/engine/stage-timeout.ts) is derived from it.
      AzureFunctionsJobHost__functionTimeout: '00:30:00'
      TIDEMARK_DEPENDENCY_POLL_SECONDS: string(dependencyPollSeconds)
      TIDEMARK_WEBHOOK_RETRY_DELAY_MS: string(webhookRetryDelayMs)
    },
    connectionSettings
  )
}

/* ---------------- role assignments (the app's managed identity) ---------------- */

resource blobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageBlobDataOwner)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource queueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageQueueDataContributor)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

resource tableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageTableDataContributor)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// The blob trigger's requirement on the AzureWebJobsStorage connection (see `roles` above).
resource accountRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageAccountContributor)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageAccountContributor)
  }
}

resource metricsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: insights
  name: guid(insights.id, app.id, roles.monitoringMetricsPublisher)
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

/* ---------------- Event Grid: the blob trigger on Flex Consumption (source: 'EventGrid') ---------------- */

resource storageEvents 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${prefix}-storage-events'
  location: location
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// functions/transform.ts registers the blob trigger as "transform" on raw/{pipeline}/{runId}/_manifest.json.
resource manifestSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = if (deployEventSubscription) {
  parent: storageEvents
  name: 'raw-manifest-to-transform'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${app.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.transform&code=${listKeys('${app.id}/host/default', '2024-04-01').systemKeys.blobs_extension}'
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/raw/'
      subjectEndsWith: '/_manifest.json'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

/* ---------------- alerts ---------------- */

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${prefix}-alerts'
  location: 'global'
  properties: {
    groupShortName: take('tidemark', 12)
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'team'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Custom events come from shared/telemetry (RunFailed, ValidationFailed, RunSucceeded, MessagePoisoned).
var eventAlerts = [
  {
    name: 'run-failed'
    title: 'tidemark: a run failed'
    severity: 1
    query: 'customEvents | where name == "RunFailed" | extend pipeline = tostring(customDimensions.pipeline), runId = tostring(customDimensions.runId), error = tostring(customDimensions.error) | project timestamp, pipeline, runId, error'
  }
  {
    name: 'validation-failed'
    title: 'tidemark: a validation check failed'
    severity: 2
    query: 'customEvents | where name == "ValidationFailed" | extend pipeline = tostring(customDimensions.pipeline), runId = tostring(customDimensions.runId), check = tostring(customDimensions.check) | project timestamp, pipeline, runId, check'
  }
  {
    name: 'poison-messages'
    title: 'tidemark: a message reached a poison queue'
    severity: 1
    query: 'customEvents | where name == "MessagePoisoned" | extend queue = tostring(customDimensions.queue), pipeline = tostring(customDimensions.pipeline), runId = tostring(customDimensions.runId) | project timestamp, queue, pipeline, runId'
  }
]

resource eventAlertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for a in eventAlerts: {
  name: '${prefix}-${a.name}'
  location: location
  properties: {
    displayName: a.title
    severity: a.severity
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: a.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}]

resource staleAlertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for p in stalePipelines: {
  name: '${prefix}-stale-${p.name}'
  location: location
  properties: {
    displayName: 'tidemark: ${p.name} has not succeeded within ${p.hours} h'
    severity: 2
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT${p.hours}H'
    criteria: {
      allOf: [
        {
          query: 'customEvents | where name == "RunSucceeded" and tostring(customDimensions.pipeline) == "${p.name}"'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}]

output functionAppName string = app.name
output functionAppHostName string = app.properties.defaultHostName
output principalId string = app.identity.principalId
output storageAccountName string = storage.name
output appInsightsName string = insights.name
