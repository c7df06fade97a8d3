using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Procyon.Runtime;

public static class RuntimeServiceCollectionExtensions
{
    /// <summary>Registers the Wasmtime engine, the module registry and the call dispatcher.</summary>
    public static IServiceCollection AddProcyonRuntime(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<RuntimeOptions>(configuration, RuntimeOptions.Section);
        services.AddSingleton<WasmEngine>();
        services.AddSingleton<ModuleLogs>();
        services.AddSingleton<CompiledModuleCache>();
        services.AddSingleton<WasmOptCommand>();
        services.AddSingleton<PrepareLimiter>();
        services.AddSingleton<ModulePreparer>();
        services.AddSingleton<ModuleRegistry>();
        services.AddSingleton<Transactions>();
        services.AddSingleton<CallLimits>();
        services.AddSingleton<DurableCalls>();
        services.AddSingleton<EarlierVersions>();
        services.AddValidatedOptions<Outbound.HttpOptions>(configuration, Outbound.HttpOptions.Section);
        services.AddSingleton<Outbound.AddressPolicy>();
        services.AddSingleton<Outbound.OutboundHttp>();
        // Modules' requests: no logging handler (URLs may carry secrets), and a handler that checks every connection's address.
        services.AddHttpClient(Outbound.OutboundHttp.ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(provider => Outbound.OutboundHttp.Handler(provider.GetRequiredService<Outbound.AddressPolicy>()))
            .RemoveAllLoggers();
        services.AddSingleton<CallDispatcher>();
        services.AddSingleton<ModulePublisher>();
        // First, so the published modules are loaded before the server takes requests.
        services.AddHostedService<ModuleLoader>();
        services.AddHostedService<ModuleSync>();
        services.AddSingleton<ModuleOptimizer>();
        services.AddHostedService(provider => provider.GetRequiredService<ModuleOptimizer>());
        // After the loader: the catalog exists, and the modules that calls taken over wake on are loaded.
        services.AddHostedService(provider => provider.GetRequiredService<DurableCalls>());
        services.AddValidatedOptions<Scheduling.SchedulerOptions>(configuration, Scheduling.SchedulerOptions.Section);
        services.AddSingleton<Scheduling.LeaseKeeper>();
        services.AddSingleton<Scheduling.ScheduledRuns>();
        services.AddSingleton<Scheduling.ScheduleHistory>();
        services.AddHostedService<Scheduling.Scheduler>();
        return services;
    }

    /// <summary>Binds options from a configuration section and validates their data annotations when the host starts.</summary>
    public static IServiceCollection AddValidatedOptions<TOptions>(this IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
    {
        services.AddOptions<TOptions>()
            .Bind(configuration.GetSection(section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return services;
    }
}
