using Microsoft.Extensions.Options;
using Procyon.Runtime;
using Procyon.Sats;
using Procyon.Storage.Tables;
using Procyon.Testing;
using Wasmtime;

namespace Procyon.Tests;

/// <summary>
/// The host's half of the ABI check against src/abi/README.md: its constants, the signatures it
/// defines its imports with, and the imports and exports of a module the SDK built. The SDK's
/// half is src/rust/procyon/tests/abi.rs.
/// </summary>
public sealed class AbiTests
{
    private static readonly string Abi = File.ReadAllText(Path.Combine(Modules.RepositoryRoot(), "src", "abi", "README.md"));

    [Fact]
    public void The_hosts_constants_are_the_abis()
    {
        Dictionary<string, long> ours = new()
        {
            ["STATUS_OK"] = ModuleAbi.StatusOk,
            ["STATUS_BAD_ARGUMENTS"] = ModuleAbi.StatusBadArguments,
            ["STATUS_NO_SUCH_FUNCTION"] = ModuleAbi.StatusNoSuchFunction,
            ["STATUS_FAILED"] = ModuleAbi.StatusFailed,
            ["KIND_PROCEDURE"] = (long)FunctionKind.Procedure,
            ["KIND_REDUCER"] = (long)FunctionKind.Reducer,
            ["KIND_INIT_REDUCER"] = (long)FunctionKind.InitReducer,
            ["KIND_CLIENT_CONNECTED"] = (long)FunctionKind.ClientConnected,
            ["KIND_CLIENT_DISCONNECTED"] = (long)FunctionKind.ClientDisconnected,
            ["FUNCTION_PUBLIC"] = ModuleAbi.FunctionPublic,
            ["COLUMN_PRIMARY_KEY"] = (long)ColumnFlags.PrimaryKey,
            ["COLUMN_AUTO_INC"] = (long)ColumnFlags.AutoIncrement,
            ["COLUMN_UNIQUE"] = (long)ColumnFlags.Unique,
            ["COLUMN_INDEXED"] = (long)ColumnFlags.Indexed,
            ["COLUMN_DEFAULT"] = ModuleAbi.ColumnDefault,
            ["TABLE_UNIQUE_VIOLATION"] = ModuleAbi.TableUniqueViolation,
            ["TABLE_NOT_FOUND"] = ModuleAbi.TableNotFound,
            ["TX_RETRY"] = ModuleAbi.TxRetry,
            ["HTTP_INVALID_REQUEST"] = ModuleAbi.HttpInvalidRequest,
            ["HTTP_REFUSED"] = ModuleAbi.HttpRefused,
            ["HTTP_TIMEOUT"] = ModuleAbi.HttpTimeout,
            ["HTTP_TOO_LARGE"] = ModuleAbi.HttpTooLarge,
            ["HTTP_NETWORK"] = ModuleAbi.HttpNetwork,
            ["SCAN_WHOLE_TABLE"] = ModuleAbi.ScanWholeTable,
            ["BOUND_INCLUDED"] = TableIndex.BoundIncluded,
            ["BOUND_EXCLUDED"] = TableIndex.BoundExcluded,
            ["BOUND_UNBOUNDED"] = TableIndex.BoundUnbounded,
        };
        foreach (var (level, index) in ModuleAbi.LogLevels.Select((level, index) => (level, index)))
        {
            ours[$"LEVEL_{level}"] = index + 1;
        }

        var abi = Table("constant").ToDictionary(row => row[0], row => long.Parse(row[1], System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(abi.OrderBy(c => c.Key), ours.OrderBy(c => c.Key));
    }

    [Fact]
    public void The_hosts_type_tags_are_the_abis()
    {
        var abi = Table("type").Select(row => (row[0], byte.Parse(row[1], System.Globalization.CultureInfo.InvariantCulture)));

        Assert.Equal(abi, Enum.GetValues<TypeKind>().Select(kind => (kind.ToString(), (byte)kind)));
    }

    [Fact]
    public void The_host_defines_exactly_the_abis_imports_with_their_signatures()
    {
        var imports = Imports();
        Assert.Equal(imports.Keys.Order(StringComparer.Ordinal), HostImports.Names.Order(StringComparer.Ordinal));
        Assert.Equal(imports.Where(i => i.Value.Suspends).Select(i => i.Key).Order(StringComparer.Ordinal), HostImports.Suspending.Order(StringComparer.Ordinal));
        // A module importing each with the ABI's signature instantiates only if the host's definitions match.
        var declarations = imports.Select(i => $"""(import "{HostImports.Module}" "{i.Key}" (func {Signature(i.Value.Parameters, i.Value.Results)}))""");
        var engine = new WasmEngine(Options.Create(new RuntimeOptions { CompiledModuleCache = "" }));
        using var module = Module.FromText(engine.Engine, "abi", $"(module {string.Join("\n", declarations)})");
        using var store = new Store(engine.Engine);

        Assert.NotNull(engine.Linker.Instantiate(store, module));
    }

    [Fact]
    public void A_module_the_SDK_built_imports_and_exports_what_the_abi_says()
    {
        var engine = new WasmEngine(Options.Create(new RuntimeOptions { CompiledModuleCache = "" }));
        using var module = Module.FromFile(engine.Engine, Modules.PathOf("ledger"));
        var imports = Imports();

        foreach (var import in module.Imports.OfType<FunctionImport>())
        {
            Assert.Equal(HostImports.Module, import.ModuleName);
            Assert.True(imports.TryGetValue(import.Name, out var abi), $"the SDK imports {import.Name}, which the ABI lacks");
            Assert.Equal((abi.Parameters, abi.Results), (Kinds(import.Parameters), Kinds(import.Results)));
        }
        var exports = module.Exports.ToDictionary(e => e.Name);
        foreach (var row in Table("export"))
        {
            Assert.True(exports.TryGetValue(row[0], out var export), $"the SDK does not export {row[0]}");
            if (export is FunctionExport function)
            {
                Assert.Equal((row[1], row[2]), (Kinds(function.Parameters), Kinds(function.Results)));
            }
        }
    }

    /// <summary>The rows of the ABI's table whose header starts with <paramref name="first"/>, cells without backticks.</summary>
    private static List<string[]> Table(string first)
    {
        var rows = Abi.Split('\n')
            .SkipWhile(line => !line.StartsWith($"| {first} |", StringComparison.Ordinal))
            .Skip(2)
            .TakeWhile(line => line.StartsWith('|'))
            .Select(line => line.Trim().Trim('|').Split('|').Select(cell => cell.Trim().Replace("`", "", StringComparison.Ordinal)).ToArray())
            .ToList();
        Assert.NotEmpty(rows);
        return rows;
    }

    private static Dictionary<string, (string Parameters, string Results, bool Suspends)> Imports() =>
        Table("import").ToDictionary(row => row[0], row => (row[1], row[2], row[3] == "yes"));

    private static string Kinds(IReadOnlyList<ValueKind> kinds) =>
        string.Join(" ", kinds.Select(kind => kind switch
        {
            ValueKind.Int32 => "i32",
            ValueKind.Int64 => "i64",
            _ => kind.ToString(),
        }));

    private static string Signature(string parameters, string results) =>
        (parameters.Length == 0 ? "" : $"(param {parameters}) ") + (results.Length == 0 ? "" : $"(result {results})");
}
