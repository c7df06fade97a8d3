using System.Collections.Concurrent;
using Procyon.Storage.Tables;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// A compiled module serving one database, with a pool of idle instances. Republishing retires
/// it: calls in flight finish on it, and their instances are dropped instead of pooled.
/// </summary>
public sealed class LoadedModule
{
    /// <summary>What a new instance may grow by while its preinit exports run.</summary>
    private const long PreinitGrowth = 1 << 20;

    private readonly WasmEngine _engine;
    private readonly Module _module;
    private readonly ModuleLogs _logs;
    private readonly string[] _preinits;
    private readonly ConcurrentBag<ModuleInstance> _idle = [];

    /// <summary>Turns to run wasm (<see cref="RuntimeOptions.MaxRunningCallsPerDatabase"/>), shared by this module's instances.</summary>
    private readonly SemaphoreSlim _running;

    /// <summary>The memory a new instance may start with: its initial memory and <see cref="PreinitGrowth"/>.</summary>
    private readonly long _startBytes;
    private int _idleCount;
    private volatile bool _retired;

    internal LoadedModule(WasmEngine engine, Module module, ModuleLogs logs, string database, string sha256, Identity? owner, DateTimeOffset updatedAt)
    {
        _engine = engine;
        _module = module;
        _logs = logs;
        _running = new SemaphoreSlim(engine.Options.MaxRunningCallsPerDatabase);
        var memory = module.Exports.OfType<MemoryExport>().FirstOrDefault(m => m.Name == "memory");
        _startBytes = Math.Min((memory?.Minimum ?? 0) * Memory.PageSize + PreinitGrowth, engine.Options.MaxMemoryBytes);
        _preinits = module.Exports
            .Select(e => e.Name)
            .Where(n => n.StartsWith(ModuleAbi.PreinitPrefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();
        Database = database;
        Sha256 = sha256;
        Owner = owner;
        UpdatedAt = updatedAt;
        // Loading is the server's own work, bounded by the publish limiter: its instance is not held to the budget.
        var first = CreateInstance(budgeted: false);
        Description = ModuleDescription.Read(first.ReadDescription());
        Tables = Description.Tables.Select(Schema).ToDictionary(t => t.Name, StringComparer.Ordinal);
        Return(first);
        engine.Memory.AddPool(this);
    }

    public string Database { get; }

    public string Sha256 { get; }

    /// <summary>The identity that published the database; null for one published before owners existed.</summary>
    public Identity? Owner { get; }

    public DateTimeOffset UpdatedAt { get; }

    /// <summary>
    /// Hex SHA-256 of the bytes it runs (the rewrite, not the published bytes): a sleeping call's
    /// snapshot (its unwound stack) fits this code only.
    /// </summary>
    public string RunningSha256 { get; init; } = "";

    /// <summary>Whether it runs the optimized rewrite, or the quick one until the optimized one replaces it.</summary>
    public bool Optimized { get; init; }

    /// <summary>Its entry in the compiled-module cache, which pruning keeps while the module is loaded; null when the cache is off.</summary>
    internal string? CompiledEntry { get; init; }

    public ModuleDescription Description { get; }

    /// <summary>The module's tables as Postgres stores them, by name.</summary>
    public IReadOnlyDictionary<string, TableSchema> Tables { get; }

    internal ModuleInstance Rent()
    {
        if (_idle.TryTake(out var instance))
        {
            Interlocked.Decrement(ref _idleCount);
            _engine.Memory.Unpark(instance.MemoryBytes);
            instance.Parked = false;
            return instance;
        }
        return CreateInstance(budgeted: true);
    }

    /// <summary>A new instance, not an idle one: a call restored from a snapshot needs memory no other call touched.</summary>
    internal ModuleInstance CreateFresh() => CreateInstance(budgeted: true);

    /// <summary>Keeps the instance for the next call while the pool has room in count and in bytes; else drops it.</summary>
    internal void Return(ModuleInstance instance)
    {
        if (!instance.Poisoned && !_retired)
        {
            if (Interlocked.Increment(ref _idleCount) <= _engine.Options.MaxIdleInstances && _engine.Memory.TryPark(instance.MemoryBytes))
            {
                instance.Parked = true;
                _idle.Add(instance);
                if (_retired)
                {
                    Retire();
                }
                return;
            }
            Interlocked.Decrement(ref _idleCount);
        }
        instance.Dispose();
    }

    internal void Retire()
    {
        _retired = true;
        _engine.Memory.RemovePool(this);
        DropIdle();
    }

    /// <summary>Disposes the idle instances, giving their memory back to the budget.</summary>
    internal void DropIdle()
    {
        while (_idle.TryTake(out var instance))
        {
            Interlocked.Decrement(ref _idleCount);
            instance.Dispose();
        }
    }

    /// <summary>The table as Postgres stores it; <see cref="DescriptionRules"/> made its columns the row's fields, in order.</summary>
    private TableSchema Schema(TableDescription table)
    {
        var typespace = Description.Typespace;
        var columns = typespace.Resolve(table.RowType).Elements.Select((field, i) =>
        {
            var flags = (ColumnFlags)table.Columns[i].Flags;
            var storage = new ColumnType(field.Type, typespace, flags.HasFlag(ColumnFlags.AutoIncrement));
            return new TableColumn(field.Name!, field.Type, flags, storage, table.Columns[i].Default is { } value ? Default(storage, value, table.Name, field.Name!) : null);
        });
        return new TableSchema(Database, table.Name, table.IsPublic, columns.ToList(), table.ScheduledFunction, table.Indexes);
    }

    /// <summary>A column's default as its Npgsql value; <see cref="DescriptionRules"/> checked its type, this its range (timestamps).</summary>
    private static object Default(ColumnType storage, byte[] value, string table, string column)
    {
        try
        {
            return storage.ReadValue(value);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"table {table}: the #[default] of column {column} cannot be stored: {e.Message}", e);
        }
    }

    private ModuleInstance CreateInstance(bool budgeted) => new(_engine, _module, _preinits, Database, _logs, _running, _startBytes, budgeted);
}
