using Microsoft.Extensions.DependencyInjection;

namespace Procyon.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>Registers the Npgsql data source, the module catalog, the scheduled tables' store and the SQL endpoint's queries; bind <see cref="Tables.ReaderConnectionOptions"/> too.</summary>
    public static IServiceCollection AddProcyonStorage(this IServiceCollection services, string connectionString)
    {
        // Error details (e.g. "Key (email)=(a@x) already exists.") reach modules as unique-violation messages.
        services.AddNpgsqlDataSource(connectionString, dataSource => dataSource.ConnectionStringBuilder.IncludeErrorDetail = true);
        services.AddSingleton<ModuleStore>();
        services.AddSingleton<Tables.DatabaseSchemas>();
        services.AddSingleton<Tables.ScheduleStore>();
        services.AddSingleton<DurableCallStore>();
        services.AddSingleton<Tables.ReaderConnections>();
        services.AddSingleton<Tables.ReadOnlyQueries>();
        return services;
    }
}
