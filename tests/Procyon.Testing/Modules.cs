using System.Text;

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

    /// <summary>Appends a custom section (id 0), which changes the bytes but not the behaviour.</summary>
    public static byte[] WithCustomSection(byte[] wasm, string name)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var payload = new List<byte>();
        payload.AddRange(Leb128(nameBytes.Length));
        payload.AddRange(nameBytes);
        var section = new List<byte> { 0 };
        section.AddRange(Leb128(payload.Count));
        section.AddRange(payload);
        return [.. wasm, .. section];
    }

    private static IEnumerable<byte> Leb128(int value)
    {
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            yield return value == 0 ? b : (byte)(b | 0x80);
        }
        while (value != 0);
    }
}
