using Microsoft.Extensions.DependencyInjection;

namespace Procyon.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>Registers the Npgsql data source and the module catalog.</summary>
    public static IServiceCollection AddProcyonStorage(this IServiceCollection services, string connectionString)
    {
        services.AddNpgsqlDataSource(connectionString);
        services.AddSingleton<ModuleStore>();
        return services;
    }
}
