using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Procyon.Runtime;

public static class RuntimeServiceCollectionExtensions
{
    /// <summary>Registers the Wasmtime engine, the module registry and the call dispatcher.</summary>
    public static IServiceCollection AddProcyonRuntime(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RuntimeOptions>()
            .Bind(configuration.GetSection(RuntimeOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<WasmEngine>();
        services.AddSingleton<ModuleLogs>();
        services.AddSingleton<ModulePreparer>();
        services.AddSingleton<ModuleRegistry>();
        services.AddSingleton<CallDispatcher>();
        return services;
    }
}
