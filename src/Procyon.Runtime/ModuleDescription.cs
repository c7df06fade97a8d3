using Procyon.Sats;

namespace Procyon.Runtime;

public enum FunctionKind : byte
{
    Procedure = 0,
    Reducer = 1,

    /// <summary>A reducer that runs once, when the database's tables are first created.</summary>
    InitReducer = 2,

    /// <summary>A reducer that runs when a hub connection to the database opens; its <c>Err</c> refuses the connection.</summary>
    ClientConnected = 3,

    /// <summary>A reducer that runs when a hub connection to the database closes.</summary>
    ClientDisconnected = 4,
}

/// <summary>A <c>#[table]</c>: its name, row type and columns.</summary>
/// <param name="ScheduledFunction">For a scheduled table, the reducer or procedure its rows name.</param>
/// <param name="Retry">For a scheduled table declared with <c>scheduled(f, retries = n, backoff = "2s")</c>: how its failed runs are tried again.</param>
/// <param name="Indexes">Its <c>index(accessor = x, btree(columns = [..]))</c>: names and column positions.</param>
public sealed record TableDescription(
    string Name,
    AlgebraicType RowType,
    bool IsPublic,
    IReadOnlyList<ColumnDescription> Columns,
    string? ScheduledFunction,
    RetryPolicy? Retry = null,
    IReadOnlyList<(string Name, IReadOnlyList<int> Columns)>? Indexes = null)
{
    public IReadOnlyList<(string Name, IReadOnlyList<int> Columns)> Indexes { get; init; } = Indexes ?? [];
}

/// <summary>
/// How a scheduled table's failed runs are tried again: up to <paramref name="Retries"/> more
/// times, the first <paramref name="Backoff"/> after the failure and each next one twice as
/// late, each delay drawn at random between half and all of that (jitter), so rows that failed
/// together do not all come back together.
/// </summary>
public sealed record RetryPolicy(uint Retries, TimeSpan Backoff)
{
    public const uint MaxRetries = 100;

    public static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(1);

    /// <summary>The longest delay before a retry, however many came before.</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromDays(1);

    /// <summary>When the retry after the failed <paramref name="attempt"/> (0 for the first run) runs.</summary>
    public DateTime RetryAt(DateTime failedAt, int attempt)
    {
        var ceiling = Math.Min(MaxDelay.TotalMicroseconds, Backoff.TotalMicroseconds * Math.Pow(2, attempt));
        return failedAt + TimeSpan.FromMicroseconds(ceiling * (0.5 + Random.Shared.NextDouble() / 2));
    }
}

/// <summary>A table's column as the description lists it.</summary>
/// <param name="Flags">Its <see cref="Storage.Tables.ColumnFlags"/>, without the ABI's <c>COLUMN_DEFAULT</c>.</param>
/// <param name="Default">Its <c>#[default(value)]</c>, BSATN of the column's type; null without one.</param>
public sealed record ColumnDescription(string Name, byte Flags, byte[]? Default);

/// <summary>One exported function as the module describes it.</summary>
/// <param name="Id">The index the module's <c>__procyon_call__</c> expects.</param>
/// <param name="IsPublic">Its results reach every subscriber, not only the caller and the owner.</param>
/// <param name="Parameters">A product type whose fields are the parameters in order.</param>
public sealed record FunctionDescription(uint Id, string Name, FunctionKind Kind, bool IsPublic, AlgebraicType Parameters, AlgebraicType ReturnType)
{
    /// <summary>Its kind as the API spells it (<c>procedure</c>, <c>reducer</c>, <c>initreducer</c>, <c>clientconnected</c>, …); the console reads these words.</summary>
    public string KindName => Kind.ToString().ToLowerInvariant();

    /// <summary>
    /// For a reducer the server runs itself, never a caller: its lifecycle as the SDK spells it
    /// and when it runs. Null for the functions callers call.
    /// </summary>
    public (string Name, string When)? Lifecycle => Kind switch
    {
        FunctionKind.InitReducer => ("init", "the database is first published"),
        FunctionKind.ClientConnected => ("client_connected", "a hub connection to the database opens (/hubs/procyon?db=…)"),
        FunctionKind.ClientDisconnected => ("client_disconnected", "a hub connection to the database closes"),
        _ => null,
    };
}

/// <summary>Everything the host knows about a module: its types, functions, tables and the hosts it may send requests to.</summary>
public sealed class ModuleDescription
{
    private readonly Dictionary<string, FunctionDescription> _byName;

    private ModuleDescription(Typespace typespace, IReadOnlyList<FunctionDescription> functions, IReadOnlyList<TableDescription> tables, IReadOnlyList<string>? httpHosts)
    {
        Typespace = typespace;
        Functions = functions;
        Tables = tables;
        HttpHosts = httpHosts;
        _byName = functions.ToDictionary(f => f.Name, StringComparer.Ordinal);
    }

    public Typespace Typespace { get; }

    public IReadOnlyList<FunctionDescription> Functions { get; }

    public IReadOnlyList<TableDescription> Tables { get; }

    /// <summary>The only hosts its procedures' requests may reach (<c>allowed_http_hosts!</c>); null when it lists none, and any host the server allows may be reached.</summary>
    public IReadOnlyList<string>? HttpHosts { get; }

    public FunctionDescription? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>
    /// Reads the BSATN the module's <c>__procyon_describe__</c> writes and checks it against
    /// <see cref="DescriptionRules"/>; throws <see cref="InvalidDataException"/>.
    /// </summary>
    public static ModuleDescription Read(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > ModuleLimits.MaxDescriptionBytes)
        {
            throw new InvalidDataException($"the description is {bytes.Length} bytes; the limit is {ModuleLimits.MaxDescriptionBytes}");
        }
        var reader = new BsatnReader(bytes);
        var types = new AlgebraicType[reader.ReadLength()];
        for (var i = 0; i < types.Length; i++)
        {
            types[i] = AlgebraicTypeReader.Read(ref reader);
        }
        var names = new Dictionary<uint, string>();
        for (var count = reader.ReadLength(); count > 0; count--)
        {
            var name = reader.ReadString();
            names[reader.ReadU32()] = name;
        }
        var typespace = new Typespace(types, names);
        var functions = new FunctionDescription[reader.ReadLength()];
        for (uint id = 0; id < functions.Length; id++)
        {
            var name = reader.ReadString();
            var kind = reader.ReadU8();
            if (!Enum.IsDefined((FunctionKind)kind))
            {
                throw new InvalidDataException($"function '{name}' has unknown kind {kind}");
            }
            var flags = reader.ReadU8();
            if ((flags & ~ModuleAbi.FunctionPublic) != 0)
            {
                throw new InvalidDataException($"function '{name}' has unknown flags {flags}");
            }
            var parameters = AlgebraicTypeReader.Read(ref reader);
            if (parameters.Kind != TypeKind.Product)
            {
                throw new InvalidDataException($"function '{name}' describes its parameters as {parameters.Kind}, not a product");
            }
            functions[id] = new FunctionDescription(id, name, (FunctionKind)kind, (flags & ModuleAbi.FunctionPublic) != 0, parameters, AlgebraicTypeReader.Read(ref reader));
        }
        var tables = new TableDescription[reader.Remaining == 0 ? 0 : reader.ReadLength()];
        for (var i = 0; i < tables.Length; i++)
        {
            var name = reader.ReadString();
            var rowType = AlgebraicTypeReader.Read(ref reader);
            var isPublic = reader.ReadBool();
            var columns = new ColumnDescription[reader.ReadLength()];
            for (var c = 0; c < columns.Length; c++)
            {
                var column = reader.ReadString();
                var flags = reader.ReadU8();
                var value = (flags & ModuleAbi.ColumnDefault) != 0 ? reader.ReadBytes(reader.ReadLength()).ToArray() : null;
                columns[c] = new ColumnDescription(column, (byte)(flags & ~ModuleAbi.ColumnDefault), value);
            }
            var tag = reader.ReadU8();
            var scheduled = tag is 0 or 2 ? reader.ReadString() : null;
            var retry = tag == 2 ? new RetryPolicy(reader.ReadU32(), TimeSpan.FromMicroseconds((long)reader.ReadU64())) : null;
            tables[i] = new TableDescription(name, rowType, isPublic, columns, scheduled, retry);
        }
        // Modules built before tables had declared indexes end here.
        for (var count = reader.Remaining == 0 ? 0 : reader.ReadLength(); count > 0; count--)
        {
            var table = reader.ReadString();
            var index = reader.ReadString();
            var positions = new int[reader.ReadLength()];
            for (var c = 0; c < positions.Length; c++)
            {
                positions[c] = (int)Math.Min(reader.ReadU32(), int.MaxValue);
            }
            var owner = Array.FindIndex(tables, t => t.Name == table);
            if (owner < 0)
            {
                throw new InvalidDataException($"index {index} names table {table}, which the module does not have");
            }
            if (tables[owner].Indexes.Count == ModuleLimits.MaxIndexes)
            {
                throw new InvalidDataException($"table {table} has more than {ModuleLimits.MaxIndexes} declared indexes; the limit is {ModuleLimits.MaxIndexes}");
            }
            tables[owner] = tables[owner] with { Indexes = [.. tables[owner].Indexes, (index, positions)] };
        }
        // Only a module that declares the hosts its requests may reach goes on.
        string[]? httpHosts = null;
        if (reader.Remaining != 0)
        {
            httpHosts = new string[reader.ReadLength()];
            for (var i = 0; i < httpHosts.Length; i++)
            {
                httpHosts[i] = reader.ReadString();
            }
        }
        if (reader.Remaining != 0)
        {
            throw new InvalidDataException($"{reader.Remaining} bytes left over after the module description");
        }
        DescriptionRules.Validate(typespace, functions, tables, httpHosts);
        return new ModuleDescription(typespace, functions, tables, httpHosts);
    }
}
