using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Procyon.Runtime;

namespace Procyon.Testing;

/// <summary>Prepares a module with the real runtime, outside any server, to read its description.</summary>
public static class Describer
{
    private static readonly IOptions<RuntimeOptions> Options = Microsoft.Extensions.Options.Options.Create(new RuntimeOptions { CompiledModuleCache = "" });
    private static readonly WasmEngine Engine = new(Options);

    public static async Task<LoadedModule> LoadAsync(string module)
    {
        var preparer = new ModulePreparer(
            Engine,
            new CompiledModuleCache(Engine, NullLogger<CompiledModuleCache>.Instance),
            new ModuleLogs(Options),
            new WasmOptCommand(Options, NullLogger<WasmOptCommand>.Instance),
            Options,
            NullLogger<ModulePreparer>.Instance);
        var prepared = await preparer.PrepareAsync(await File.ReadAllBytesAsync(Modules.PathOf(module)), rewritten: null, optimize: false, CancellationToken.None);
        return preparer.Load(module, prepared, optimized: false, "", owner: null, DateTimeOffset.UtcNow);
    }
}
