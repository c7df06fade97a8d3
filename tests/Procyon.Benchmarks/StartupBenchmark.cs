using System.Diagnostics;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// Server start with N published modules: cold (empty compiled-module cache, every module is
/// compiled) beside warm (the cache from the previous start). The N modules are the example
/// module with a distinct custom section each, so each compiles separately.
/// </summary>
internal static class StartupBenchmark
{
    public static async Task<int> RunAsync(int modules)
    {
        var cache = Directory.CreateTempSubdirectory("procyon-bench-cache-");
        try
        {
            await using var database = await TestDatabase.CreateAsync();
            var setting = $"--Procyon:Runtime:CompiledModuleCache={cache.FullName}";
            var wasm = await File.ReadAllBytesAsync(Modules.PathOf("example"));
            // One identity publishes them all: beyond the default share of databases per identity.
            await using (var publisher = await TestServer.StartAsync(database, "--Procyon:Runtime:CompiledModuleCache=", $"--Procyon:Runtime:MaxDatabasesPerIdentity={modules}"))
            {
                for (var i = 0; i < modules; i++)
                {
                    (await publisher.PublishBytesAsync($"db-{i}", Modules.WithCustomSection(wasm, $"copy {i}"))).EnsureSuccessStatusCode();
                }
            }
            var cold = await TimeStartAsync(database, setting);
            var cached = cache.GetFiles("*.cwasm").Length;
            var warm = await TimeStartAsync(database, setting);
            Console.WriteLine($"{"modules",7} | {"cold start ms",13} | {"cached start ms",15} | {"cold / cached",13} | cache files");
            Console.WriteLine($"{modules,7} | {cold,13:0} | {warm,15:0} | {cold / warm,13:0.0} | {cached}");
            Summary.Write($"startup, {modules} modules", "start ms, from the compiled cache", warm, "compiling every module", cold);
            return 0;
        }
        finally
        {
            cache.Delete(recursive: true);
        }
    }

    private static async Task<double> TimeStartAsync(TestDatabase database, string setting)
    {
        var stopwatch = Stopwatch.StartNew();
        await using var server = await TestServer.StartAsync(database, setting);
        return stopwatch.Elapsed.TotalMilliseconds;
    }
}
