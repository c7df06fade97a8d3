namespace Procyon.Testing;

/// <summary>The wasm modules the Rust workspace builds (deploy/test.sh builds them first).</summary>
public static class Modules
{
    public static string PathOf(string module)
    {
        var directory = Environment.GetEnvironmentVariable("WASM_DIR")
            ?? Path.Combine(RepositoryRoot(), "src", "rust", "target", "wasm32-unknown-unknown", "release");
        var path = Path.Combine(directory, module + ".wasm");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"{path} is missing; build the modules first (./deploy/test.sh does)", path);
    }

    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Server.sln")))
            {
                return directory.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no Server.sln above {AppContext.BaseDirectory}");
    }
}
