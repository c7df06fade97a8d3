using System.Security.Cryptography;
using Procyon.Storage;

namespace Procyon.Runtime;

/// <summary>
/// The module versions a database ran before it was republished (or its quick rewrite optimized),
/// loaded while calls that went to sleep on them wake here: a snapshot holds the call's unwound
/// stack, which fits only the code it slept in. One load serves every such call waking at once;
/// the last one to end retires it.
/// </summary>
public sealed class EarlierVersions(DurableCallStore store, ModulePreparer preparer)
{
    private readonly Dictionary<string, Loading> _loaded = new(StringComparer.Ordinal);

    /// <summary>
    /// Runs <paramref name="run"/> with the version of <paramref name="current"/>'s database whose
    /// code hashes to <paramref name="runningSha256"/>, or with null when that code is gone.
    /// Throws <see cref="ModuleRejectedException"/> when it no longer loads.
    /// </summary>
    public async Task<T> WithVersionAsync<T>(LoadedModule current, string runningSha256, Func<LoadedModule?, Task<T>> run, CancellationToken cancellationToken)
    {
        var key = $"{current.Database}/{runningSha256}";
        Loading loading;
        lock (_loaded)
        {
            if (!_loaded.TryGetValue(key, out loading!))
            {
                // Not the first waker's token: its cancellation must not fail the others waiting on the load.
                loading = new Loading(LoadAsync(current, runningSha256));
                _loaded[key] = loading;
            }
            loading.Users++;
        }
        try
        {
            return await run(await loading.Module.WaitAsync(cancellationToken));
        }
        finally
        {
            lock (_loaded)
            {
                if (--loading.Users == 0)
                {
                    _loaded.Remove(key);
                    if (loading.Module.IsCompletedSuccessfully)
                    {
                        loading.Module.Result?.Retire();
                    }
                }
            }
        }
    }

    private async Task<LoadedModule?> LoadAsync(LoadedModule current, string runningSha256)
    {
        var prepared = await store.FindVersionAsync(current.Database, runningSha256, current.Owner?.ToString(), CancellationToken.None);
        if (prepared is null || Convert.ToHexStringLower(SHA256.HashData(prepared)) != runningSha256)
        {
            return null;
        }
        // Optimized or not, it is never swapped: it serves its sleeping calls and goes.
        return preparer.Load(current.Database, prepared, optimized: true, runningSha256, current.Owner, current.UpdatedAt);
    }

    private sealed class Loading(Task<LoadedModule?> module)
    {
        public Task<LoadedModule?> Module { get; } = module;

        public int Users { get; set; }
    }
}
