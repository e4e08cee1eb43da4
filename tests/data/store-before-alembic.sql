-- A store made by hyperflow before alembic migrations (commit 92d1605: Base.metadata.create_all),
-- with a Running experiment, one Succeeded and one Running trial and a stored push key.
BEGIN TRANSACTION;
CREATE TABLE tuner_experiment_conditions (
	id INTEGER NOT NULL, 
	experiment_uid VARCHAR(32) NOT NULL, 
	type VARCHAR(32) NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	message TEXT NOT NULL, 
	time FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(experiment_uid) REFERENCES tuner_experiments (uid) ON DELETE CASCADE
);
INSERT INTO "tuner_experiment_conditions" VALUES(1,'cb82174f74be433b9abdcc6575857ae5','Created','ExperimentCreated','Experiment is created',1.79577079252431535722e+09);
INSERT INTO "tuner_experiment_conditions" VALUES(2,'cb82174f74be433b9abdcc6575857ae5','Running','ExperimentRunning','Experiment is running',1.79577079252485418314e+09);
CREATE TABLE tuner_experiments (
	uid VARCHAR(32) NOT NULL, 
	namespace VARCHAR(253) NOT NULL, 
	name VARCHAR(253) NOT NULL, 
	spec JSON NOT NULL, 
	base_dir TEXT, 
	backend VARCHAR(32) NOT NULL, 
	phase VARCHAR(32) NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	message TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	completed_at FLOAT, 
	controller_pid INTEGER, 
	PRIMARY KEY (uid), 
	CONSTRAINT uq_experiment_name UNIQUE (namespace, name)
);
INSERT INTO "tuner_experiments" VALUES('cb82174f74be433b9abdcc6575857ae5','default','old','{"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "old", "namespace": "default"}, "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"}, "algorithm": {"algorithmName": "random"}, "parallelTrialCount": 1, "maxTrialCount": 2, "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}], "trialTemplate": {"trialParameters": [{"name": "x", "reference": "x"}], "command": ["python", "-c", "print(''loss=${trialParameters.x}'')"]}}}','/tmp','local','Running','ExperimentRunning','Experiment is running',1.79577079252328968049e+09,1.79577079252485418314e+09,NULL,NULL);
CREATE TABLE tuner_observations (
	id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	name VARCHAR(253) NOT NULL, 
	value FLOAT NOT NULL, 
	step INTEGER, 
	timestamp FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(trial_id) REFERENCES tuner_trials (id) ON DELETE CASCADE
);
INSERT INTO "tuner_observations" VALUES(1,1,'loss',0.25,0,1700000000.0);
CREATE TABLE tuner_push_requests (
	trial_id INTEGER NOT NULL, 
	"key" VARCHAR(64) NOT NULL, 
	PRIMARY KEY (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES tuner_trials (id) ON DELETE CASCADE
);
INSERT INTO "tuner_push_requests" VALUES(1,'key-1');
CREATE TABLE tuner_trials (
	id INTEGER NOT NULL, 
	experiment_uid VARCHAR(32) NOT NULL, 
	name VARCHAR(253) NOT NULL, 
	seq INTEGER NOT NULL, 
	assignments JSON NOT NULL, 
	phase VARCHAR(32) NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	message TEXT NOT NULL, 
	trial_dir TEXT NOT NULL, 
	push_token VARCHAR(64) NOT NULL, 
	exit_code INTEGER, 
	metrics JSON, 
	objective_value FLOAT, 
	observation_count INTEGER NOT NULL, 
	collected_count INTEGER NOT NULL, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	completed_at FLOAT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_trial_name UNIQUE (experiment_uid, name), 
	FOREIGN KEY(experiment_uid) REFERENCES tuner_experiments (uid) ON DELETE CASCADE
);
INSERT INTO "tuner_trials" VALUES(1,'cb82174f74be433b9abdcc6575857ae5','old-aaaaaaaa',0,'{"x": 0.25}','Succeeded','TrialSucceeded','Trial has succeeded','/tmp/old-aaaaaaaa','ffffffffffffffffffffffffffffffff',0,'{"loss": {"min": 0.25, "max": 0.25, "latest": 0.25}}',0.25,1,0,1.79577079253238511085e+09,1.79577079253727102284e+09,1.7957707925390436649e+09);
INSERT INTO "tuner_trials" VALUES(2,'cb82174f74be433b9abdcc6575857ae5','old-bbbbbbbb',1,'{"x": 0.5}','Running','TrialRunning','Trial is running','/tmp/old-bbbbbbbb','eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',NULL,NULL,NULL,0,0,1.79577079253955817226e+09,1.79577079253973746295e+09,NULL);
CREATE INDEX ix_trial_experiment_phase ON tuner_trials (experiment_uid, phase);
CREATE INDEX ix_observation_trial ON tuner_observations (trial_id, name);
COMMIT;
